"""HTML pages. They render server-side from the same `LogReader` calls as the API (so they work and
stay escaped without JavaScript); small scripts of ours add the histogram, local times,
the calendar and live tail, all from the JSON API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, Flask, abort, current_app, render_template, request, url_for

from common.durations import parse_duration
from common.record import LEVELS
from webui.api import DEFAULT_LIMIT, MAX_CONTEXT, filters, page_limit
from webui.coverage import add_health
from webui.params import (
    LEVEL_CHOICES,
    Filters,
    ParamError,
    iso,
    max_window,
    parse_cursor,
    parse_int,
    parse_record_id,
    query_args,
)
from webui.queries import get_reader

bp = Blueprint("pages", __name__)
QUICK_PICKS = (("15m", "15 min"), ("1h", "1 h"), ("24h", "24 h"), ("7d", "7 d"))
SHOWN_CHARS = 10_000
CONTEXT_STEP = 20


def install_filters(app: Flask) -> None:
    app.jinja_env.filters["iso"] = iso
    app.jinja_env.globals.update(LEVELS=LEVELS, LEVEL_CHOICES=LEVEL_CHOICES, QUICK_PICKS=QUICK_PICKS)


def _link(endpoint: str, pairs: list[tuple[str, str]], **values: str) -> str:
    query = urlencode(pairs)
    return url_for(endpoint, **values) + ("?" + query if query else "")


def _quick_picks() -> list[tuple[str, str]]:
    """The quick windows this server accepts: none wider than the retention (the API would answer 400)."""
    widest = max_window(current_app.config["OPSLOG"].mongo.retention).total_seconds()
    return [(value, label) for value, label in QUICK_PICKS if parse_duration(value) <= widest]


def _form_state(flt: Filters | None) -> dict:
    """What the form shows: the user's own words (`1h`), not their evaluation."""
    args = request.args
    levels = flt.levels if flt else tuple(args.getlist("level"))
    return {"q": args.get("q", ""), "host": args.get("host", ""), "app": args.get("app", ""),
            "source": args.get("source", ""), "since": args.get("since", ""), "until": args.get("until", ""),
            "limit": args.get("limit", ""), "levels": levels}


def _choices() -> dict:
    reader = get_reader()
    return {"host_names": [h["host"] for h in reader.hosts()], "app_names": reader.apps()}


@bp.get("/")
def search():
    error, flt, page = None, None, None
    try:
        flt, limit, cursor = filters(), page_limit(), parse_cursor(request.args)
        page = get_reader().search(flt, limit, cursor)
    except ParamError as exc:
        error = exc
    links = {}
    if flt is not None:
        keep_limit = {"limit": request.args["limit"]} if request.args.get("limit") else {}
        links = {
            "permalink": _link("pages.search", query_args(flt, absolute=True, **keep_limit)),
            "histogram": _link("api.histogram", query_args(flt, absolute=True)),
            "tail": _link("pages.tail", query_args(flt)),
            "export": _link("pages.export", query_args(flt, absolute=True)),
            "newest": _link("pages.search", [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]),
        }
        if page is not None and page.next_cursor is not None:
            links["older"] = _link("pages.search", query_args(flt, absolute=True, cursor=page.next_cursor.encode(),
                                                                   **keep_limit))
        links["quick"] = [(label, _link("pages.search", query_args(flt, since=value)))
                          for value, label in _quick_picks()]
    status = 400 if error else 200
    return render_template("search.html", flt=flt, page=page, error=error, form=_form_state(flt), links=links,
                           default_limit=DEFAULT_LIMIT, **_choices()), status


@bp.get("/context/<record_id>")
def context(record_id: str):
    parse_record_id(record_id)
    before = parse_int(request.args, "before", CONTEXT_STEP, MAX_CONTEXT, minimum=0)
    after = parse_int(request.args, "after", CONTEXT_STEP, MAX_CONTEXT, minimum=0)
    records = get_reader().context(record_id, before, after)
    if records is None:
        abort(404, description="No record with this id.")
    anchor = next(r for r in records if r["id"] == record_id)
    position = records.index(anchor)
    more = {
        "before": url_for("pages.context", record_id=record_id, before=min(MAX_CONTEXT, before + CONTEXT_STEP),
                          after=after) if position >= before and before < MAX_CONTEXT else None,
        "after": url_for("pages.context", record_id=record_id, before=before,
                         after=min(MAX_CONTEXT, after + CONTEXT_STEP))
        if len(records) - position - 1 >= after and after < MAX_CONTEXT else None,
    }
    return render_template("context.html", records=records, anchor=anchor, more=more)


@bp.get("/tail")
def tail():
    flt = filters()
    return render_template("tail.html", form=_form_state(flt), flt=flt,
                           api=_link("tail.tail", query_args(flt)), cursor=request.args.get("cursor", "")[:64],
                           **_choices())


@bp.get("/hosts")
def hosts():
    now = datetime.now(UTC)
    stale_after = current_app.config["OPSLOG_STALE_AFTER"]
    rows = get_reader().hosts()
    for row in rows:
        row["stale"] = (now - row["last_seen"]).total_seconds() > stale_after
    add_health(rows)  # per-file coverage: the worst lag, a gap, a silent shipper (webui.coverage)
    return render_template("hosts.html", hosts=rows, stale_minutes=stale_after // 60)


@bp.get("/hosts/<host>")
def host(host: str):
    found = get_reader().host(host)
    if found is None:
        abort(404, description="No such host.")
    found["stale"] = (datetime.now(UTC) - found["last_seen"]).total_seconds() \
        > current_app.config["OPSLOG_STALE_AFTER"]
    days = parse_int(request.args, "days", 91, 366)
    return render_template("host.html", host=found, calendar_api=url_for("api.calendar", host=host, days=days))


@bp.get("/export")
def export():
    flt = filters()
    web = current_app.config["OPSLOG"].webui
    return render_template("export.html", flt=flt, hidden=query_args(flt, absolute=True),
                           max_rows=web.export_max_rows, default_rows=min(10_000, web.export_max_rows))
