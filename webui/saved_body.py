"""A saved search's JSON body checked and shaped: `{name, shared, q, filters: {host, app, source,
level}, since, columns}` in, the stored fields out, or `ParamError` naming the field at fault
(`filters.host`, `columns`, ...). The filters and `q` are checked by the same `parse_filters`
as a search itself (`q` in the query language, a bad one with its `position`), so a saved
search can always be run."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from common.durations import parse_duration
from webui.params import ParamError, parse_filters

COLUMNS = ("time", "level", "host", "app", "source", "message")
DEFAULT_COLUMNS = ["time", "level", "host", "app", "message"]  # what the search page shows
FILTER_KEYS = ("host", "app", "source", "level")
FIELDS = ("name", "shared", "q", "filters", "since", "columns")
MAX_NAME = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RELATIVE = re.compile(r"^[0-9]+(\.[0-9]+)?(s|m|h|d|w)$")


def check_body(body: Any, default_window: float, widest_seconds: float,
               current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every field to store. With `current` (a PUT), the fields `body` leaves out keep their values."""
    if not isinstance(body, dict):
        raise ParamError(None, "the body must be a JSON object")  # type: ignore[arg-type]  # param null
    for key in body:
        if key not in FIELDS:
            raise ParamError(str(key)[:40], f"unknown field; a saved search has {', '.join(FIELDS)}")
    if current is not None:
        body = {**{k: current[k] for k in FIELDS if k in current}, **body}
    shared = body.get("shared", False)
    if not isinstance(shared, bool):
        raise ParamError("shared", "must be true or false")
    q = body.get("q")
    if q is not None and not isinstance(q, str):
        raise ParamError("q", "must be a string")
    return {"name": _name(body.get("name")), "shared": shared, "q": q or "",
            "filters": _filters(body.get("filters"), q or "", default_window, widest_seconds),
            "since": _since(body.get("since"), widest_seconds), "columns": _columns(body.get("columns"))}


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParamError("name", "is required: a name for the search")
    name = value.strip()
    if len(name) > MAX_NAME or _CONTROL.search(name):
        raise ParamError("name", f"must be at most {MAX_NAME} printable characters")
    return name


def _since(value: Any, widest_seconds: float) -> str | None:
    """A relative window (`15m`, `2h`, `7d`), kept as written; None: the server's default window."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParamError("since", "must be a duration such as 15m, 2h or 7d")
    try:
        if not _RELATIVE.match(value.strip()):
            raise ValueError(value)
        seconds = parse_duration(value.strip())
    except ValueError:
        raise ParamError("since", f"must be a duration back from now such as 15m, 2h or 7d (a saved search "
                                  f"keeps a relative window), got {value[:40]!r}") from None
    if not 0 < seconds <= widest_seconds:
        raise ParamError("since", f"must be more than 0 and at most {widest_seconds:g} s (mongo.retention, "
                                  "or 92 days without one)")
    return value.strip()


def _columns(value: Any) -> list[str]:
    if value is None:
        return list(DEFAULT_COLUMNS)
    if (not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value)
            or len(set(value)) != len(value) or not set(value) <= set(COLUMNS)):
        raise ParamError("columns", f"must be a non-empty list of distinct columns among {', '.join(COLUMNS)}")
    return list(value)


def _filters(value: Any, q: str, default_window: float, widest_seconds: float) -> dict[str, Any]:
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ParamError("filters", f"must be an object with {', '.join(FILTER_KEYS)}")
    for key in value:
        if key not in FILTER_KEYS:
            raise ParamError(f"filters.{str(key)[:40]}", f"unknown filter; filters are {', '.join(FILTER_KEYS)}")
    args: MultiDict[str, str] = MultiDict()
    for key in ("host", "app", "source"):
        item = value.get(key)
        if item is not None and not isinstance(item, str):
            raise ParamError(f"filters.{key}", "must be a string or null")
        if item:
            args.add(key, item)
    levels = value.get("level") or []
    if isinstance(levels, str):
        levels = [levels]
    if not isinstance(levels, list) or not all(isinstance(lv, str) for lv in levels):
        raise ParamError("filters.level", "must be a list of levels")
    for level in levels:
        args.add("level", level)
    if q:
        args.add("q", q)
    try:
        flt = parse_filters(args, default_window, widest=timedelta(seconds=widest_seconds))
    except ParamError as exc:
        if exc.param == "q":  # the query language's own message and position (common.query.parse)
            raise
        raise ParamError(f"filters.{exc.param}", exc.error) from None
    return {"host": flt.host, "app": flt.app, "source": flt.source, "level": list(flt.levels)}


def search_query(doc: dict[str, Any]) -> str:
    """The search page's query string for a saved search (its window relative, so it stays current)."""
    pairs = [("q", doc["q"])] if doc.get("q") else []
    filters = doc.get("filters") or {}
    pairs += [(key, filters[key]) for key in ("host", "app", "source") if filters.get(key)]
    pairs += [("level", level) for level in filters.get("level") or []]
    if doc.get("since"):
        pairs.append(("since", doc["since"]))
    columns = doc.get("columns") or DEFAULT_COLUMNS
    if columns != DEFAULT_COLUMNS:  # read by static/searches.js, which hides the others
        pairs.append(("columns", ",".join(columns)))
    return urlencode(pairs)
