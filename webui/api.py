"""The JSON API (contract in shared/DESIGN.md); the pages call the same functions."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context

from webui import coverage, formats
from webui.params import (
    Filters,
    ParamError,
    max_window,
    parse_choice,
    parse_cursor,
    parse_filters,
    parse_int,
    parse_record_id,
)
from webui.queries import QueryTimeout, bucket_for, get_reader
from webui.streams import open_stream

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")
DEFAULT_LIMIT = 100
MAX_CONTEXT = 500


def filters() -> Filters:
    """The request's filters; its window at most the retention (or 92 days), for every endpoint alike."""
    config = current_app.config["OPSLOG"]
    return parse_filters(request.args, config.webui.default_window, widest=max_window(config.mongo.retention))


def page_limit() -> int:
    return parse_int(request.args, "limit", DEFAULT_LIMIT, current_app.config["OPSLOG"].webui.max_limit)


@bp.get("/logs")
def logs():
    flt, limit, cursor = filters(), page_limit(), parse_cursor(request.args)
    page = get_reader().search(flt, limit, cursor)
    body = {"records": [formats.api_record(r) for r in page.records],
            "next_cursor": page.next_cursor.encode() if page.next_cursor else None}
    if page.searched_to is not None:
        body["searched_to"] = page.searched_to
    return formats.json_response(formats.json_ready(body))


@bp.get("/logs/<record_id>/context")
def context(record_id: str):
    parse_record_id(record_id)
    before = parse_int(request.args, "before", 20, MAX_CONTEXT, minimum=0)
    after = parse_int(request.args, "after", 20, MAX_CONTEXT, minimum=0)
    records = get_reader().context(record_id, before, after)
    if records is None:
        return formats.json_response({"error": "no record with this id", "param": "id"}, 404)
    return formats.json_response({"records": [formats.api_record(r) for r in records]})


@bp.get("/histogram")
def histogram():
    flt = filters()
    body = get_reader().histogram(flt, bucket_for(flt.until - flt.since))
    return formats.json_response(formats.json_ready(body))


@bp.get("/fields")
def fields():
    """The parsed fields in the catalogue (`?app=` for one app's), for autocompletion."""
    app = request.args.get("app") or None
    if app is not None and (len(app) > 255 or any(ord(c) < 32 for c in app)):
        raise ParamError("app", "must be at most 255 printable characters")
    return formats.json_response({"fields": get_reader().fields(app)})


@bp.get("/hosts")
def hosts():
    rows = get_reader().hosts()
    coverage.add_health(rows)
    return formats.json_response(formats.json_ready({"hosts": rows, "stale_after_seconds":
                                                     current_app.config["OPSLOG_STALE_AFTER"]}))


@bp.get("/hosts/<host>")
def host(host: str):
    found = get_reader().host(host)
    if found is None:
        return formats.json_response({"error": "unknown host", "param": "host"}, 404)
    return formats.json_response(formats.json_ready(found))


@bp.get("/hosts/<host>/calendar")
def calendar(host: str):
    days = parse_int(request.args, "days", 91, 366)
    return formats.json_response(get_reader().calendar(host, days))


@bp.get("/export")
def export():
    flt = filters()
    fmt = parse_choice(request.args, "format", ("ndjson", "csv"), "ndjson")
    max_rows = current_app.config["OPSLOG"].webui.export_max_rows
    limit = parse_int(request.args, "limit", max_rows, max_rows)
    return open_stream(lambda: _export_response(flt, fmt, limit))


def _export_response(flt: Filters, fmt: str, limit: int) -> Response:
    records = get_reader().iter_records(flt, limit)
    # The first page is read before the 200 goes out, so a timeout there is a clean 503; one
    # later cuts the stream (the client sees an unterminated download, never a short "complete" one).
    first = list(itertools.islice(records, 1))
    records = itertools.chain(first, records)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        body, mimetype = formats.csv_lines(records), "text/csv; charset=utf-8"
    else:
        body, mimetype = formats.ndjson_lines(records), "application/x-ndjson"
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="opslog-{stamp}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_errorhandler(QueryTimeout)
def query_timeout(exc: QueryTimeout):
    """503, not a partial answer: the reads were cut at an arbitrary point, so nothing says what was covered."""
    log.warning("%s %s: %s", request.method, request.full_path, exc)
    message = (f"the search took longer than {exc.seconds:g} s and was stopped; "
               "narrow the time window or add filters (host, app, level)")
    if request.path.startswith("/api/"):
        return formats.json_response({"error": message, "param": None, "timeout_seconds": exc.seconds}, 503)
    return render_template("error.html", status=503, message=message), 503
