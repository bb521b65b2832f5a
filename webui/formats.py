"""Records on the way out: JSON for the API, NDJSON and CSV for exports.

Log lines are untrusted. JSON is safe by construction (orjson escapes); in CSV a
cell that a spreadsheet would run as a formula (starting with = + - @, tab or CR)
is prefixed with a quote, the OWASP-recommended neutralisation.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson
from flask import Response

from webui.params import iso

CSV_COLUMNS = ("ts", "host", "app", "source", "offset", "level", "message", "fields", "parse_error", "id")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    return str(value)  # ObjectId, Decimal128, bytes... inside parsed fields


def to_json(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_JSON_OPTIONS)


def api_record(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    out["ts"], out["received_at"] = iso(rec["ts"]), iso(rec["received_at"])
    return out


def json_response(body: Any, status: int = 200) -> Response:
    response = Response(to_json(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def json_ready(value: Any) -> Any:
    """Datetimes to the API's ISO form, recursively (for hand-built response bodies)."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_row(rec: dict[str, Any]) -> list[str]:
    fields = to_json(rec.get("fields") or {}).decode() if rec.get("fields") else ""
    values = [iso(rec["ts"]), rec["host"], rec["app"], rec["source"], str(rec["offset"]), rec.get("level") or "",
              rec["message"], fields, rec.get("parse_error") or "", rec["id"]]
    return [neutralise(str(v)) for v in values]


def ndjson_lines(records: Iterable[dict[str, Any]], chunk: int = 500) -> Iterator[bytes]:
    batch: list[bytes] = []
    for rec in records:
        batch.append(to_json(api_record(rec)) + b"\n")
        if len(batch) >= chunk:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)


def csv_lines(records: Iterable[dict[str, Any]], chunk: int = 500) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for rec in records:
        writer.writerow(csv_row(rec))
        n += 1
        if n % chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
