"""The one module that writes to MongoDB (pymongo).

A batch is written in two idempotent steps, so retrying a whole batch after any
failure, or storing a redelivered message again, changes nothing:

1. `logs`: one unordered insert_many. Each document has a deterministic `_id`;
   duplicate-key errors (11000) mean "already stored". Each document also
   carries `batch`, the id of the AMQP message that brought it.
2. `rollups` (per minute, host, app, level) and `hosts`: `$inc` upserts whose
   filter is `{_id: key, batches: {$ne: message id}}` and that push the message
   id onto `batches`, atomically in the same document. A message already applied
   to a key no longer matches; the upsert then hits the key's `_id` and fails
   with 11000, which again means "already counted". The counted records of a
   message are those this attempt inserted plus those an earlier attempt of the
   same message inserted (`batch` equals its id); duplicates first stored by
   another message are counted by that one.

The guard lists are capped (GUARD_KEEP ids per document) and emptied once a
key is idle for GUARD_TTL, bounding their size; a message redelivered after
that long would be counted again (documented limit; its records are still
stored once).

pymongo errors are translated here: connection trouble, no primary, timeouts
and write-concern failures are StoreUnavailable (retry); a document the server
will never take (too large, fails validation) is PoisonMessage.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from common.config import MongoConfig
from common.errors import StoreUnavailable

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# Write errors that retrying can never fix: the document goes to the dead-letter queue.
PERMANENT_CODES = {2, 52, 55, 121, 10334, 17280, 17419}
GUARD_KEEP = 4096
HOST_GUARD_KEEP = 512
GUARD_TTL = timedelta(hours=1)
ERROR_LEVELS = ("error", "critical")

LOG_INDEXES = [
    IndexModel([("ts", DESCENDING)], name="ts"),
    IndexModel([("host", ASCENDING), ("ts", DESCENDING)], name="host_ts"),
    IndexModel([("app", ASCENDING), ("ts", DESCENDING)], name="app_ts"),
    IndexModel([("level", ASCENDING), ("ts", DESCENDING)], name="level_ts"),
    IndexModel([("host", ASCENDING), ("source", ASCENDING), ("offset", ASCENDING)], name="context"),
]


@dataclass
class Message:
    """The documents of one AMQP message, under its id (a hash of its body)."""
    id: str
    docs: list[dict[str, Any]]


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: dict[Any, str] = field(default_factory=dict)  # _id -> why the server refused it


class Store:
    def __init__(self, cfg: MongoConfig):
        self.cfg = cfg
        self.client: pymongo.MongoClient = pymongo.MongoClient(
            cfg.uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, socketTimeoutMS=60000,
            w=cfg.write_concern, journal=cfg.journal, retryWrites=True, tz_aware=True)
        self.db = self.client[cfg.database]
        self.logs = self.db["logs"]
        self.rollups = self.db["rollups"]
        self.hosts = self.db["hosts"]
        self.text_search = False
        self._trimmed_at = 0.0

    def close(self) -> None:
        self.client.close()

    def ping(self) -> bool:
        try:
            self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    def init(self) -> None:
        """Create indexes (idempotent) and detect `$text` support once."""
        try:
            indexes = list(LOG_INDEXES)
            if self.cfg.retention:
                indexes.append(IndexModel([("received_at", ASCENDING)], name="retention",
                                          expireAfterSeconds=int(self.cfg.retention)))
            self.logs.create_indexes(indexes)
            self.rollups.create_indexes([IndexModel([("t", ASCENDING)], name="t"),
                                         IndexModel([("host", ASCENDING), ("t", ASCENDING)], name="host_t"),
                                         IndexModel([("u", ASCENDING)], name="guard_age")])
            try:
                self.logs.create_index([("message", "text")], name="message_text")
                self.text_search = True
            except OperationFailure:
                self.text_search = False
            log.info("database %s ready (full-text search: %s)", self.cfg.database,
                     "$text index" if self.text_search else "bounded substring")
        except PyMongoError as exc:
            raise _translate(exc) from exc

    def write(self, messages: list[Message]) -> WriteResult:
        """Store every document of `messages` once and count each once in rollups/hosts."""
        docs = [doc for message in messages for doc in message.docs]
        if not docs:
            return WriteResult()
        try:
            duplicates, rejected = self._insert(docs)
            if rejected:
                messages = [Message(m.id, [d for d in m.docs if d["_id"] not in rejected]) for m in messages]
            counted = self._counted(messages, duplicates)
            self._apply_rollups(messages, counted)
            self._trim_guards()
        except PyMongoError as exc:
            raise _translate(exc) from exc
        return WriteResult(inserted=len(docs) - len(duplicates) - len(rejected), duplicates=len(duplicates),
                           rejected=rejected)

    def _insert(self, docs: list[dict[str, Any]]) -> tuple[set[Any], dict[Any, str]]:
        """Insert unordered; the ids already stored, and the ids the server will never take."""
        try:
            self.logs.insert_many(docs, ordered=False)
            return set(), {}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            duplicates = {docs[e["index"]]["_id"] for e in errors if e.get("code") == DUPLICATE_KEY}
            rejected = {docs[e["index"]]["_id"]: f"database refused the record: code {e.get('code')}: "
                        f"{e.get('errmsg')}" for e in errors if e.get("code") in PERMANENT_CODES}
            transient = [e for e in errors if e.get("code") != DUPLICATE_KEY and e.get("code") not in PERMANENT_CODES]
            if transient or exc.details.get("writeConcernErrors"):
                first = transient[0] if transient else exc.details["writeConcernErrors"][0]
                raise StoreUnavailable(f"insert failed: code {first.get('code')}: {first.get('errmsg')}") from None
            return duplicates, rejected

    def _counted(self, messages: list[Message], duplicates: set[Any]) -> dict[str, list[dict[str, Any]]]:
        """Per message, the documents its rollups must count (see module docstring)."""
        earlier: set[Any] = set()
        if duplicates:
            ids = {m.id for m in messages}
            for doc in self.logs.find({"_id": {"$in": list(duplicates)}, "batch": {"$in": list(ids)}},
                                      {"_id": 1, "batch": 1}):
                earlier.add((doc["batch"], doc["_id"]))
        return {m.id: [d for d in m.docs if d["_id"] not in duplicates or (m.id, d["_id"]) in earlier]
                for m in messages}

    def _apply_rollups(self, messages: list[Message], counted: dict[str, list[dict[str, Any]]]) -> None:
        now = datetime.now(UTC)
        rollup_ops, host_ops = [], []
        for message in messages:
            docs = counted[message.id]
            if not docs:
                continue
            per_key: Counter[tuple[datetime, str, str, str | None]] = Counter(
                (d["ts"].replace(second=0, microsecond=0), d["host"], d["app"], d.get("level")) for d in docs)
            for (minute, host, app, level), n in per_key.items():
                key = f"{int(minute.timestamp())}|{host}|{app}|{level or '-'}"
                rollup_ops.append(UpdateOne(
                    {"_id": key, "batches": {"$ne": message.id}},
                    {"$inc": {"n": n}, "$set": {"u": now},
                     "$push": {"batches": {"$each": [message.id], "$slice": -GUARD_KEEP}},
                     "$setOnInsert": {"t": minute, "host": host, "app": app, "level": level}},
                    upsert=True))
            for host, group in _by_host(docs).items():
                host_ops.append(UpdateOne(
                    {"_id": host, "batches": {"$ne": message.id}},
                    {"$inc": {"records": len(group), "errors": sum(d.get("level") in ERROR_LEVELS for d in group)},
                     "$min": {"first_seen": min(d["received_at"] for d in group)},
                     "$max": {"last_seen": max(d["received_at"] for d in group)},
                     "$addToSet": {"apps": {"$each": sorted({d["app"] for d in group})},
                                   "sources": {"$each": sorted({d["source"] for d in group})}},
                     "$push": {"batches": {"$each": [message.id], "$slice": -HOST_GUARD_KEEP}}},
                    upsert=True))
        for collection, ops in ((self.rollups, rollup_ops), (self.hosts, host_ops)):
            if ops:
                _bulk_ignoring_duplicates(collection, ops)

    def _trim_guards(self) -> None:
        if time.monotonic() - self._trimmed_at < 300:
            return
        self._trimmed_at = time.monotonic()
        cutoff = datetime.now(UTC) - GUARD_TTL
        self.rollups.update_many({"u": {"$lt": cutoff}, "batches": {"$exists": True}}, {"$unset": {"batches": ""}})


def _by_host(docs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        groups.setdefault(doc["host"], []).append(doc)
    return groups


def _bulk_ignoring_duplicates(collection: Any, ops: list[UpdateOne]) -> None:
    """Run guarded upserts; a duplicate key means this message was already counted there."""
    try:
        collection.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            first = others[0] if others else exc.details["writeConcernErrors"][0]
            raise StoreUnavailable(f"{collection.name} update failed: {first.get('errmsg')}") from None


def _translate(exc: PyMongoError) -> StoreUnavailable:
    return StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
