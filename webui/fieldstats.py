"""`GET /api/fields/<field>/top`: a field's most frequent values in the current result, for the
search page's field sidebar and the query bar's value suggestions.

The field is named as the query language names it: `host`, `app`, `source`, `level` and
`message` are the record's own; any other name is a parsed field (`req.method` is
`fields.req.method`, and `fields.req.method` says so explicitly). The result is the one
`/api/logs` would page through: the same filters, `q` included.
"""

from __future__ import annotations

import re

from flask import Blueprint, request

from webui import formats
from webui.api import filters
from webui.params import ParamError, parse_int
from webui.queries import get_reader

bp = Blueprint("fieldstats", __name__, url_prefix="/api")
TOP_LEVEL = ("host", "app", "source", "level", "message")
DEFAULT_TOP, MAX_TOP = 10, 100
MAX_FIELD = 200
# Dotted names of letters, digits, _ @ and -: never a `$` (an operator or a variable in a pipeline).
_FIELD = re.compile(r"[A-Za-z0-9_@][\w@-]*(\.[\w@-]+)*")


def stored_path(field: str) -> str:
    """Where the record keeps `field` (its dotted path in the stored document); ParamError if unusable."""
    if len(field) > MAX_FIELD or not _FIELD.fullmatch(field) or field == "fields":
        raise ParamError("field", f"must be a field name such as level, status or req.method (dotted for "
                                  f"nesting, letters, digits, _ @ -, at most {MAX_FIELD} characters)")
    if field in TOP_LEVEL:
        return field
    return field if field.startswith("fields.") else f"fields.{field}"


@bp.get("/fields/<path:field>/top")
def top(field: str):
    path = stored_path(field)
    flt = filters()
    limit = parse_int(request.args, "limit", DEFAULT_TOP, MAX_TOP)
    body = {"field": field, **get_reader().top_values(flt, path, limit)}
    return formats.json_response(formats.json_ready(body))
