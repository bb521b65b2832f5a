"""`LogReader`, the web UI's door to MongoDB: the one module of `webui` that imports pymongo.

It opens the client, and wraps every read: each is done in the module of its
concern, which is given a `ReadHandle` (the collections and the clock), a scan
budget per request and a deadline per request. Every command inside one
`LogReader` call carries `maxTimeMS` (pymongo's client-side operation timeout
sends what is left of `query_timeout`), so no request can hold the database
longer than that. pymongo's errors become opslog's: `StoreUnavailable`
(unreachable) or `QueryTimeout`. The UI never writes records: the consumer
creates the collections' indexes (`consumer.store.indexes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pymongo
from flask import current_app
from pymongo import MongoClient, ReadPreference
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError

from common.config import MongoConfig
from common.errors import StoreUnavailable
from webui.queries.budget import Budget
from webui.queries.context import lines_around
from webui.queries.coverage import host_files, hosts_health, verified_files
from webui.queries.fields import list_fields
from webui.queries.filters import EPOCH, Cursor, Filters
from webui.queries.handle import ReadHandle
from webui.queries.histogram import level_histogram
from webui.queries.hosts import find_host, host_calendar, list_apps, list_hosts
from webui.queries.hour_tables import HourCache
from webui.queries.logs import RECORD_FIELDS, to_record
from webui.queries.plan import Capabilities
from webui.queries.search import Page, newest_page


def open_database(mongo: MongoConfig) -> Database:
    """`mongo`'s database on a client of its own; `close_app` closes it (`db.client`)."""
    client: MongoClient = MongoClient(mongo.uri, tz_aware=True, appname="opslog-web",
                                      serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)
    return client[mongo.database]


class QueryTimeout(Exception):
    """A request's reads outlasted `webui.query_timeout`: the server stopped them (maxTimeMS) or the deadline passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"the query took longer than {seconds:g} s (webui.query_timeout)")


class LogReader:
    """Reads `logs`, `rollups` and `hosts`, and keeps each user's sign-out count in `user_sessions`.
    One per app; thread-safe like the pymongo client."""

    def __init__(self, db: Database, scan_budget: int = 40_000, clock: Callable[[], float] = time.time,
                 query_timeout: float = 10.0):
        self.db, self.scan_budget, self.clock, self.query_timeout = db, scan_budget, clock, query_timeout
        self.handle = ReadHandle(logs=db["logs"], rollups=db["rollups"], hosts=db["hosts"], clock=clock,
                                 catalogue=db["field_catalogue"])
        self.hours = HourCache(self.handle.rollups, clock)
        self._capabilities: tuple[float, Capabilities] | None = None
        # From the primary even when the UI reads logs from a secondary: a sign-out must hold at once.
        self.user_sessions = db.get_collection("user_sessions", read_preference=ReadPreference.PRIMARY)

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """One deadline for every command inside, sent as maxTimeMS; pymongo errors as opslog's."""
        try:
            if not self.db.client.topology_description.has_readable_server(self.db.read_preference):
                # Under a deadline pymongo spends all of it looking for a server (serverSelectionTimeoutMS
                # no longer applies): look first, so a database that is down is a 503 as soon as before.
                self.db.command("ping", read_preference=self.db.read_preference)
            with pymongo.timeout(self.query_timeout):
                yield
        except ServerSelectionTimeoutError as exc:  # a timeout too, but of reaching the server
            raise StoreUnavailable(f"database unreachable: {exc}") from exc
        except PyMongoError as exc:
            # ExecutionTimeout (code 50) when the server gave up; NetworkTimeout when the
            # deadline passed before its answer arrived (a server that checks maxTimeMS late).
            if exc.timeout:
                raise QueryTimeout(self.query_timeout) from exc
            if isinstance(exc, ConnectionFailure):
                raise StoreUnavailable(f"database unreachable: {exc}") from exc
            raise

    def capabilities(self) -> Capabilities:
        """What the server offers the planner: probed (a text index on `logs`?), then kept for a minute."""
        now = time.monotonic()
        if self._capabilities is None or now - self._capabilities[0] > 60:
            with self._guarded():
                indexes = self.handle.logs.index_information()
            keys = [list(info.get("key", ())) for info in indexes.values()]
            text = any(v == "text" for key in keys for _, v in key)
            fields = frozenset(key[0][0] for key in keys if len(key) == 2 and key[1][0] == "ts"
                               and key[0][0].startswith("fields."))
            wildcard = any(key and key[0][0] == "fields.$**" for key in keys)
            ranges = bool(fields or wildcard) and self._scans_ranges(next(iter(fields), "fields.status"))
            self._capabilities = (now, Capabilities(text_index=text, indexed_fields=fields, wildcard_index=wildcard,
                                                    index_ranges=ranges))
        return self._capabilities[1]

    def _scans_ranges(self, path: str) -> bool:
        """Whether the server's plan for a range on an indexed field uses the index (explain, not run):
        MongoDB does; SecantusDB plans only equalities and would scan the whole collection."""
        probe = {path: {"$gte": 0}, "ts": {"$gte": EPOCH}}
        with self._guarded():
            plan = self.db.command("explain", {"find": "logs", "filter": probe}, verbosity="queryPlanner")
        return "IXSCAN" in str(plan.get("queryPlanner", {}).get("winningPlan", {})) or "indexName" in str(
            plan.get("queryPlanner", {}).get("winningPlan", {}))

    def ping(self) -> None:
        with self._guarded():
            self.db.command("ping")

    def sign_outs(self, user: str) -> int:
        """How often `user` signed out: part of the version a session must carry."""
        with self._guarded():
            doc = self.user_sessions.find_one({"_id": user}, {"sign_outs": 1})
        return int(doc["sign_outs"]) if doc else 0

    def end_sessions(self, user: str) -> None:
        """End every session of `user`, in every browser."""
        with self._guarded():
            self.user_sessions.update_one({"_id": user}, {"$inc": {"sign_outs": 1}}, upsert=True)

    def search(self, flt: Filters, limit: int, cursor: Cursor | None = None,
               budget: int | None = None) -> Page:
        """The newest `limit` records matching `flt` (older than `cursor`), newest first."""
        flt = flt.resolved(self.capabilities())
        with self._guarded():
            return newest_page(self.handle, flt, limit, cursor, Budget(budget or self.scan_budget))

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
        with self._guarded():
            doc = self.handle.logs.find_one({"_id": record_id}, RECORD_FIELDS)
        return to_record(doc) if doc else None

    def context(self, record_id: str, before: int, after: int) -> list[dict[str, Any]] | None:
        """Up to `before` lines before the record, the record, up to `after` after: its file, in file order."""
        anchor = self.record(record_id)
        if anchor is None:
            return None
        with self._guarded():
            return lines_around(self.handle, anchor, before, after)

    def histogram(self, flt: Filters, bucket: timedelta, budget: int | None = None) -> dict[str, Any]:
        """Counts per bucket and level over the window; `complete` is False where the budget ran out."""
        flt = flt.resolved(self.capabilities())
        with self._guarded():
            return level_histogram(self.handle, self.hours, flt, bucket, Budget(budget or self.scan_budget))

    def fields(self, app: str | None, limit: int = 1000) -> list[dict[str, Any]]:
        """The parsed fields records carry (of `app`, or of every app), most frequent first."""
        with self._guarded():
            return list_fields(self.handle, app, limit)

    def hosts(self, limit: int = 2000) -> list[dict[str, Any]]:
        with self._guarded():
            return list_hosts(self.handle, limit)

    def host(self, name: str) -> dict[str, Any] | None:
        with self._guarded():
            return find_host(self.handle, name)

    def apps(self) -> list[str]:
        with self._guarded():
            return list_apps(self.handle)

    def files(self, host: str, stale_after: float, retention: float | None) -> list[dict[str, Any]]:
        """A host's files: stored ranges, gaps, lag and silence (webui.queries.coverage)."""
        with self._guarded():
            return host_files(self.handle.logs, self.db["coverage"], self.db["heartbeats"], host, self.handle.now(),
                              stale_after, retention)

    def verify(self, host: str, stale_after: float, retention: float | None) -> list[dict[str, Any]]:
        """A host's files, their ranges recomputed from the stored records."""
        with self._guarded():
            return verified_files(self.handle.logs, self.db["coverage"], self.db["heartbeats"], host,
                                  self.handle.now(), stale_after, retention)

    def files_health(self, stale_after: float, retention: float | None) -> dict[str, dict[str, Any]]:
        """Per host: worst lag, any gap, silent."""
        with self._guarded():
            return hosts_health(self.db["coverage"], self.db["heartbeats"], self.handle.now(), stale_after, retention)

    def calendar(self, host: str, days: int, budget: int | None = None) -> dict[str, Any]:
        """Records and errors per UTC day for `host` over the last `days` days."""
        with self._guarded():
            return host_calendar(self.handle, self.hours, host, days, Budget(budget or self.scan_budget))


def get_reader() -> LogReader:
    """The app's LogReader (made by `create_app`), for views."""
    return current_app.extensions["opslog.reader"]
