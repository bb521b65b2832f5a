"""Streamed responses (exports, the live tail's event streams) take at most `webui.max_streams` threads.

A stream holds one of the server's `webui.threads` threads for as long as it lasts; past the
limit a new one is refused with 503 and Retry-After rather than queued, so the other threads
always stay free for searches, pages and probes however many downloads or tails are open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask, Response, current_app

from webui.formats import json_response

RETRY_AFTER_SECONDS = 10


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    def install(self, app: Flask) -> None:
        app.extensions["opslog.streams"] = self

    def acquire(self) -> bool:
        return self._free.acquire(blocking=False)

    def release(self) -> None:
        self._free.release()


def open_stream(make: Callable[[], Response]) -> Response:
    """The response `make()` builds, holding a slot until the server closes it; 503 when none is free."""
    slots: StreamSlots = current_app.extensions["opslog.streams"]
    if not slots.acquire():
        response = json_response({"error": f"{slots.limit} downloads or live streams are open, the most this "
                                  "server allows at once (webui.max_streams); try again shortly", "param": None}, 503)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    try:
        response = make()
    except BaseException:
        slots.release()
        raise
    response.call_on_close(slots.release)
    return response
