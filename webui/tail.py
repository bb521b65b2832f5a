"""`GET /api/tail`: the live tail by arrival order, as JSON pages or as Server-Sent Events.

One URL, two forms. JSON for scripts: `{"records": [...], "next_cursor": "...", "caught_up":
bool}`, the records stored after `cursor` that match the filters, oldest first; without a
cursor the current end (no records, a cursor). Server-Sent Events when the request accepts
`text/event-stream` (as `EventSource` does): each `records` event carries a page of records
and has the cursor after them as its event id, so a reconnecting `EventSource` resumes
exactly there with `Last-Event-ID` (which wins over `cursor`). A comment line is sent as a
heartbeat when nothing else is; a stream ends after `STREAM_SECONDS` (the browser reconnects
on its own from the last id), and holds one of `webui.max_streams` slots while it runs.

Cursors are opaque: `t<position>` in URL-safe base64, checked on the way in; a position
beyond the newest one ever handed out (another database, a wiped one) is refused like
garbage, 400 with `param: cursor`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request, stream_with_context

from common.errors import StoreUnavailable
from webui import formats
from webui.api import filters, page_limit
from webui.params import Filters, ParamError
from webui.queries import QueryTimeout, get_reader
from webui.queries.tail import PositionAhead
from webui.streams import open_stream

log = logging.getLogger(__name__)
bp = Blueprint("tail", __name__, url_prefix="/api")
STREAM_SECONDS = 300.0     # a stream's lifetime; EventSource reconnects from its last id
HEARTBEAT_SECONDS = 15.0   # a comment when nothing else was sent for this long
POLL_SECONDS = 0.25        # between reads while caught up
STREAM_PAGE = 1000         # records per event at most
_CURSOR = re.compile(r"^t(0|[1-9][0-9]{0,17})$")


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"t{position}".encode()).decode().rstrip("=")


def decode_cursor(raw: str, param: str = "cursor") -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    match = _CURSOR.match(text) if len(raw) <= 40 else None
    if match is None:
        raise ParamError(param, "is not a cursor of /api/tail")
    return int(match.group(1))


def _wants_events() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/event-stream"]) == "text/event-stream"


@bp.get("/tail")
def tail():
    flt = filters()
    raw = request.headers.get("Last-Event-ID") or request.args.get("cursor")
    position = decode_cursor(raw) if raw else None
    if _wants_events():
        reader = get_reader()
        start = _checked(flt, position) if position is not None else reader.tail_end()
        return open_stream(lambda: _event_stream(flt, start))
    limit = page_limit()
    if position is None:
        return formats.json_response({"records": [], "next_cursor": encode_cursor(get_reader().tail_end()),
                                      "caught_up": True})
    page = _page(flt, position, limit)
    return formats.json_response({"records": [formats.api_record(r) for r in page.records],
                                  "next_cursor": encode_cursor(page.position), "caught_up": page.caught_up})


def _page(flt: Filters, position: int, limit: int):
    try:
        return get_reader().tail(flt, position, limit)
    except PositionAhead:
        raise ParamError("cursor", "is ahead of every record stored: not a cursor of this database") from None


def _checked(flt: Filters, position: int) -> int:
    """`position`, once the database vouches for it (a 400 now, not an error inside the stream)."""
    try:
        get_reader().tail(flt, position, 1, budget=1)
    except PositionAhead:
        raise ParamError("cursor", "is ahead of every record stored: not a cursor of this database") from None
    return position


def _event_stream(flt: Filters, start: int) -> Response:
    cfg = current_app.config
    lifetime = float(cfg.get("OPSLOG_TAIL_STREAM_SECONDS", STREAM_SECONDS))
    # more often than waitress' channel_timeout (webui.request_timeout) closes a silent connection
    heartbeat = min(float(cfg.get("OPSLOG_TAIL_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)),
                    cfg["OPSLOG"].webui.request_timeout / 2)
    response = Response(stream_with_context(_events(flt, start, lifetime, heartbeat)),
                        mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx in front: pass each event on at once
    return response


def _events(flt: Filters, position: int, lifetime: float, heartbeat: float) -> Iterator[bytes]:
    reader = get_reader()
    ends = time.monotonic() + lifetime
    yield f"retry: 1000\nid: {encode_cursor(position)}\nevent: cursor\ndata: {{}}\n\n".encode()
    quiet_since = time.monotonic()
    while time.monotonic() < ends:
        try:
            page = reader.tail(flt, position, STREAM_PAGE)
        except (StoreUnavailable, QueryTimeout) as exc:
            # End the stream: the browser reconnects from the last id once the database answers.
            log.warning("live tail stream ended: %s", exc)
            return
        except Exception:  # noqa: BLE001 - the 200 is sent: a stream can only end, never turn into a 500
            log.exception("live tail stream ended by an error")
            return
        moved = page.position != position
        position = page.position
        if page.records:
            body = formats.to_json({"records": [formats.api_record(r) for r in page.records]})
            yield b"id: " + encode_cursor(position).encode() + b"\nevent: records\ndata: " + body + b"\n\n"
            quiet_since = time.monotonic()
        elif moved and time.monotonic() - quiet_since >= heartbeat:
            # Filtered-out records only: move the client's resume point on, at heartbeat pace.
            yield f"id: {encode_cursor(position)}\nevent: cursor\ndata: {{}}\n\n".encode()
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat:
            yield b": heartbeat\n\n"
            quiet_since = time.monotonic()
        if page.caught_up:
            time.sleep(POLL_SECONDS)
