"""`Store`, the web UI's door to MongoDB, and the one module of `webui` that talks to pymongo.

Each read is done in the module of its concern; `Store` gives it the collections,
a scan budget per request, and turns pymongo connection errors into `StoreUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from flask import current_app
from pymongo import ASCENDING, DESCENDING, MongoClient, ReadPreference
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from common.config import MongoConfig
from common.errors import StoreUnavailable
from webui.params import Cursor, Filters
from webui.queries.budget import Budget
from webui.queries.context import lines_around
from webui.queries.histogram import level_histogram
from webui.queries.hosts import find_host, host_calendar, list_apps, list_hosts
from webui.queries.hour_tables import HourCache
from webui.queries.logs import RECORD_FIELDS, to_record
from webui.queries.search import Page, newest_page


def open_database(cfg: MongoConfig) -> Database:
    """`cfg`'s database on a client of its own; `close_app` closes it (`db.client`)."""
    client: MongoClient = MongoClient(cfg.uri, tz_aware=True, appname="opslog-web",
                                      serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)
    return client[cfg.database]


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"database unreachable: {exc}") from exc


class Store:
    """Reads `logs`, `rollups` and `hosts`, and keeps each user's sign-out count in `user_sessions`.
    One per app; thread-safe like the pymongo client."""

    def __init__(self, db: Database, scan_budget: int = 40_000, clock: Callable[[], float] = time.time):
        self.db, self.scan_budget, self.clock = db, scan_budget, clock
        self.logs, self.rollups, self.hosts_coll = db["logs"], db["rollups"], db["hosts"]
        self.hours = HourCache(self, clock)
        # From the primary even when the UI reads logs from a secondary: a sign-out must hold at once.
        self.user_sessions = db.get_collection("user_sessions", read_preference=ReadPreference.PRIMARY)

    def ping(self) -> None:
        with _translated():
            self.db.command("ping")

    def sign_outs(self, user: str) -> int:
        """How often `user` signed out: part of the version a session must carry."""
        with _translated():
            doc = self.user_sessions.find_one({"_id": user}, {"sign_outs": 1})
        return int(doc["sign_outs"]) if doc else 0

    def end_sessions(self, user: str) -> None:
        """End every session of `user`, in every browser."""
        with _translated():
            self.user_sessions.update_one({"_id": user}, {"$inc": {"sign_outs": 1}}, upsert=True)

    def ensure_indexes(self) -> None:
        """The indexes the consumer creates; tests call this, the UI itself never writes."""
        with _translated():
            self.logs.create_index([("ts", DESCENDING)])
            for key in ("host", "app", "level"):
                self.logs.create_index([(key, ASCENDING), ("ts", DESCENDING)])
            self.logs.create_index([("host", ASCENDING), ("source", ASCENDING), ("offset", ASCENDING)])
            self.rollups.create_index([("t", ASCENDING)])

    def search(self, flt: Filters, limit: int, cursor: Cursor | None = None,
               budget: int | None = None) -> Page:
        """The newest `limit` records matching `flt` (older than `cursor`), newest first."""
        with _translated():
            return newest_page(self, flt, limit, cursor, Budget(budget or self.scan_budget))

    def iter_records(self, flt: Filters, max_rows: int, page_size: int = 1000,
                     max_scanned: int = 2_000_000) -> Iterator[dict[str, Any]]:
        """Every record matching `flt`, newest first, up to `max_rows` (for exports)."""
        cursor, rows, scanned = None, 0, 0
        while rows < max_rows and scanned < max_scanned:
            page = self.search(flt, min(page_size, max_rows - rows), cursor)
            yield from page.records
            rows, scanned = rows + len(page.records), scanned + page.scanned
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def record(self, record_id: str) -> dict[str, Any] | None:
        with _translated():
            doc = self.logs.find_one({"_id": record_id}, RECORD_FIELDS)
        return to_record(doc) if doc else None

    def context(self, record_id: str, before: int, after: int) -> list[dict[str, Any]] | None:
        """Up to `before` lines before the record, the record, up to `after` after: its file, in file order."""
        anchor = self.record(record_id)
        if anchor is None:
            return None
        with _translated():
            return lines_around(self, anchor, before, after)

    def histogram(self, flt: Filters, bucket: timedelta, budget: int | None = None) -> dict[str, Any]:
        """Counts per bucket and level over the window; `complete` is False where the budget ran out."""
        with _translated():
            return level_histogram(self, flt, bucket, Budget(budget or self.scan_budget))

    def hosts(self, limit: int = 2000) -> list[dict[str, Any]]:
        with _translated():
            return list_hosts(self, limit)

    def host(self, name: str) -> dict[str, Any] | None:
        with _translated():
            return find_host(self, name)

    def apps(self) -> list[str]:
        with _translated():
            return list_apps(self)

    def calendar(self, host: str, days: int, budget: int | None = None) -> dict[str, Any]:
        """Records and errors per UTC day for `host` over the last `days` days."""
        with _translated():
            return host_calendar(self, host, days, Budget(budget or self.scan_budget))


def get_store() -> Store:
    """The app's Store (made by `create_app`), for views."""
    return current_app.extensions["opslog.store"]
