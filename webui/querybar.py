"""The query bar's page side: the query language's help page (`/help/query`, the "?" next to the
search box) and the template filters that list a result's fields for the field sidebar and the
expanded rows. The bar itself (suggestions, the error underline, adding filters) is
static/query.js; a field's values come from `fieldstats`.

The help page's examples carry their query and the sample records each matches in data
attributes: tests/webui/test_query_help.py seeds the sample, runs every example through
/api/logs and checks the answer, so the page cannot drift from the language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, render_template, url_for
from markupsafe import Markup, escape

from common.query import And, Or, QueryError, Text, parse
from webui.fieldstats import TOP_LEVEL
from webui.pages import SHOWN_CHARS

bp = Blueprint("querybar", __name__)
RECORD_FIELDS = ("host", "app", "source", "level")
MAX_SIDEBAR_FIELDS = 200


def query_name(leaf: str) -> str:
    """How q names the parsed field at `leaf` (its path below `fields`): a leaf that a bare name would
    not reach (`host`, `fields.x`) is spelled with the explicit `fields.` prefix."""
    return f"fields.{leaf}" if leaf in TOP_LEVEL or leaf.startswith("fields.") or leaf == "_exists_" else leaf


def field_leaves(fields: dict[str, Any]) -> list[tuple[str, Any]]:
    """`fields` flattened to (name as q spells it, value), by path: nested objects open up, lists stay whole."""
    return [(query_name(leaf), value) for leaf, value in _leaves(fields, "")]


def _leaves(fields: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key in sorted(fields, key=str):
        value, path = fields[key], f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{path}.")
        else:
            out.append((path, value))
    return out


def result_fields(records: Iterable[dict[str, Any]]) -> list[str]:
    """The field names a page of records has: the record's own first, then every parsed leaf, sorted."""
    names: set[str] = set()
    for rec in records:
        names.update(name for name, _ in field_leaves(rec.get("fields") or {}))
    return [*RECORD_FIELDS, *sorted(names)[:MAX_SIDEBAR_FIELDS]]


@bp.app_template_filter("field_leaves")
def _field_leaves_filter(fields: dict[str, Any]) -> list[tuple[str, Any]]:
    return field_leaves(fields or {})


@bp.app_template_filter("result_fields")
def _result_fields_filter(records: Iterable[dict[str, Any]]) -> list[str]:
    return result_fields(records)


def message_terms(q: str | None) -> list[str]:
    """The texts `q` looks for in the message (bare words, phrases, `message:x`), not those it excludes;
    longest first. A q of plain words alone also yields itself whole, so an old permalink's text shows
    as one mark, as before the language. A q that does not parse yields nothing."""
    if not q:
        return []
    try:
        root = parse(q).root
    except QueryError:
        return []
    terms: set[str] = set()
    stack = [root]
    while stack:  # what NOT excludes is never marked: Not is not walked
        node = stack.pop()
        if isinstance(node, (And, Or)):
            stack.extend(node.items)
        elif isinstance(node, Text) and node.field == "message":
            terms.add(node.value)
    words = root.items if isinstance(root, And) else (root,)
    if all(isinstance(n, Text) and n.field == "message" and not n.phrase for n in words):
        terms.add(" ".join(n.value for n in words if isinstance(n, Text)))
    return sorted((t for t in terms if t), key=lambda t: (-len(t), t))


@bp.app_template_filter("highlight_query")
def highlight_query(text: str, q: str | None, limit: int = SHOWN_CHARS) -> Markup:
    """`text` escaped, with what `q` looks for in the message in <mark> (case-insensitive); cut at `limit`."""
    terms = message_terms(q)
    shown = text[:limit]
    out: list[Markup] = []
    pos = 0
    if terms:
        pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
        for match in pattern.finditer(shown):
            out += [escape(shown[pos:match.start()]), Markup("<mark>"), escape(match.group()), Markup("</mark>")]
            pos = match.end()
    out.append(escape(shown[pos:]))
    if len(text) > limit:
        out.append(Markup('<span class="cut">… %d more characters</span>') % (len(text) - limit))
    return Markup("").join(out)


@bp.app_template_filter("without_q")
def without_q(query_string: str) -> str:
    """A link's query string less its `q`: the window and filters a field's suggested values come from."""
    return urlencode([(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k != "q"])


@bp.app_template_global("fields_api")
def fields_api(app: str = "") -> str:
    """`GET /api/fields` (the field catalogue: names to suggest), for one app when the search names one."""
    return url_for("api.fields", app=app or None)


# The records the help page's examples run against (shown there as a table, seeded by its test).
SAMPLE_RECORDS = (
    {"n": 1, "host": "web-01", "app": "nginx", "level": "info", "source": "/var/log/nginx/access.log",
     "message": "GET /api/orders 200 in 35ms",
     "fields": {"status": 200, "duration_ms": 35, "req": {"method": "GET", "path": "/api/orders"},
                "started": "2026-01-30T08:00:00Z"}},
    {"n": 2, "host": "web-02", "app": "nginx", "level": "error", "source": "/var/log/nginx/access.log",
     "message": "POST /api/pay 502 in 1250ms: payment provider timeout",
     "fields": {"status": 502, "duration_ms": 1250, "req": {"method": "POST", "path": "/api/pay"}}},
    {"n": 3, "host": "web-03", "app": "nginx", "level": "warning", "source": "/var/log/nginx/access.log",
     "message": "GET /health 200 in 2ms (health check)",
     "fields": {"status": "200", "duration_ms": "2", "req": {"method": "GET", "path": "/health"}}},
    {"n": 4, "host": "db-01", "app": "postgres", "level": "error", "source": "/var/log/postgresql/main.log",
     "message": "timeout after 5000ms waiting for lock on orders", "fields": {"duration_ms": 5000}},
    {"n": 5, "host": "db-01", "app": "postgres", "level": "critical", "source": "/var/log/postgresql/main.log",
     "message": "could not write to file: No space left on device", "fields": {}},
    {"n": 6, "host": "web-01", "app": "api", "level": "info", "source": "/var/log/api/app.log",
     "message": "user 42 signed in", "fields": {"user": {"id": 42, "name": "ann"}, "tags": ["login", "web"]}},
    {"n": 7, "host": "web-02", "app": "api", "level": "debug", "source": "/var/log/api/app.log",
     "message": "cache miss for key user:42", "fields": {"cache": "miss", "hit": False}},
    {"n": 8, "host": "worker-1", "app": "jobs", "level": "info", "source": "/var/log/jobs/worker.log",
     "message": "job 7 done in 250ms",
     "fields": {"job": 7, "duration_ms": 250, "bytes": 512, "started": "2026-01-31T12:00:00Z"}},
)


@bp.get("/help/query")
def query_help():
    return render_template("query_help.html", sample=SAMPLE_RECORDS)
