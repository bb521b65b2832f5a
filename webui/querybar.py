"""The query bar's page side: the query language's help page (`/help/query`, the "?" next to the
search box) and the template filters that list a result's fields for the field sidebar and the
expanded rows. The bar itself (suggestions, the error underline, adding filters) is
static/query.js; a field's values come from `fieldstats`.

The help page's examples carry their query and the sample records each matches in data
attributes: tests/webui/test_query_help.py seeds the sample, runs every example through
/api/logs and checks the answer, so the page cannot drift from the language.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, render_template

bp = Blueprint("querybar", __name__)
RECORD_FIELDS = ("host", "app", "source", "level")
MAX_SIDEBAR_FIELDS = 200


def field_leaves(fields: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """`fields` flattened to (dotted name, value) pairs, sorted: nested objects open up, lists stay whole."""
    out: list[tuple[str, Any]] = []
    for key in sorted(fields, key=str):
        value, name = fields[key], f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += field_leaves(value, f"{name}.")
        else:
            out.append((name, value))
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


@bp.get("/help/query")
def query_help():
    return render_template("query_help.html")
