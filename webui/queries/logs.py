"""The `logs` side of every read: `Filters` as a `$match`, stored documents as API records.

`filter_match(flt)` is THE way to turn `Filters` into a MongoDB filter (search,
histogram, export, tail, top values, alert counts): it includes `q`, planned by
`webui.queries.plan`, so every read honours the query language without knowing it.
"""

from __future__ import annotations

from typing import Any

from webui.queries.filters import NO_LEVEL, Filters
from webui.queries.times import utc

RECORD_FIELDS = {"_id": 1, "ts": 1, "received_at": 1, "host": 1, "app": 1, "source": 1, "offset": 1,
                 "level": 1, "message": 1, "fields": 1, "parse_error": 1}


def to_record(doc: dict[str, Any]) -> dict[str, Any]:
    rec = {"id": doc["_id"], "ts": utc(doc["ts"]), "received_at": utc(doc.get("received_at") or doc["ts"]),
           "host": doc.get("host", ""), "app": doc.get("app", ""), "source": doc.get("source", ""),
           "offset": doc.get("offset", 0), "level": doc.get("level"), "message": doc.get("message", ""),
           "fields": doc.get("fields") or {}}
    if doc.get("parse_error"):
        rec["parse_error"] = doc["parse_error"]
    return rec


def filter_match(flt: Filters, lead: str | None = None) -> dict[str, Any]:
    """`flt` but its time window as a `$match`, leaving out `lead`, the dimension a leading `$match` holds."""
    match: dict[str, Any] = {}
    for key in ("host", "app", "source"):
        value = getattr(flt, key)
        if value is not None and key != lead:
            match[key] = value
    if flt.levels and lead != "level":
        match["level"] = {"$in": [_level_value(lv) for lv in flt.levels]}
    plan = flt.plan
    if plan is not None and plan.match:
        if match:
            return {"$and": [match, plan.match]}
        return dict(plan.match)
    return match


def _level_value(level: str) -> str | None:
    return None if level == NO_LEVEL else level
