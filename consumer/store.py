"""The one module that writes to MongoDB (pymongo).

A batch is written in two idempotent steps, so retrying a whole batch after any
failure, or storing a redelivered message again, changes nothing:

1. `logs`: one unordered insert_many. Each document has a deterministic `_id`;
   duplicate-key errors (11000) mean "already stored". Each document also
   carries `batch`, the id of the AMQP message that brought it.
2. `rollups` (per minute, host, app, level) and `hosts`: `$inc` upserts whose
   filter is `{_id: key, batches: {$nin: message ids}}` and that push the message
   ids onto `batches`, atomically in the same document; one upsert per key
   carries the sum of all the batch's messages, so the cost of a batch does not
   grow with its message count. When one of the messages was already applied
   to the key, it no longer matches; the upsert then hits the key's `_id` and
   fails with 11000. That answer is ambiguous: it also comes back when another
   consumer created the key between our match and our insert. So such a key is
   sent again message by message, the keys that fail then are read back, and
   the upserts whose message id is not in `batches` are sent again (the key
   exists now, so they match and apply).
   The counted records of a message are those this attempt inserted plus those
   an earlier attempt of the same message inserted (`batch` equals its id);
   duplicates first stored by another message are counted by that one.

The guard lists are capped (GUARD_KEEP ids per rollup, HOST_GUARD_KEEP per
host) and emptied once a rollup is idle for GUARD_TTL, bounding their size; a
message redelivered after that long (or after that many later messages of its
host) would be counted again (documented limit; its records are still stored once).

pymongo errors are translated here: connection trouble, no primary, timeouts
and write-concern failures are StoreUnavailable (retry); a document the server
or the BSON encoder will never take (too large, an integer over 64 bits, a NUL
in a key, fails validation) is reported back as rejected, for the dead-letter queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import bson
import pymongo
from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError
from pymongo.monitoring import CommandListener

from common.config import MongoConfig
from common.errors import StoreUnavailable
from consumer.tally import HostCount, MinuteCount, tally

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
DUPLICATE_LOOKUP_CHUNK = 500
# Write errors that retrying can never fix: the document goes to the dead-letter queue.
PERMANENT_CODES = {2, 52, 55, 121, 10334, 17280, 17419}
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
GUARD_KEEP = 4096
HOST_GUARD_KEEP = 512
GUARD_TTL = timedelta(hours=1)
GUARD_TRIM_EVERY = 300.0
GUARD_ATTEMPTS = 5

LOG_INDEXES = [
    IndexModel([("ts", DESCENDING)], name="ts"),
    IndexModel([("host", ASCENDING), ("ts", DESCENDING)], name="host_ts"),
    IndexModel([("app", ASCENDING), ("ts", DESCENDING)], name="app_ts"),
    IndexModel([("level", ASCENDING), ("ts", DESCENDING)], name="level_ts"),
    IndexModel([("host", ASCENDING), ("source", ASCENDING), ("offset", ASCENDING)], name="context"),
]
ROLLUP_INDEXES = [
    IndexModel([("t", ASCENDING)], name="t"),
    IndexModel([("host", ASCENDING), ("t", ASCENDING)], name="host_t"),
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
    rejected: dict[Any, str] = field(default_factory=dict)  # _id -> why it can never be stored


@dataclass
class _Inserted:
    duplicate_ids: set[Any] = field(default_factory=set)
    duplicates: int = 0
    rejected: dict[Any, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Guarded:
    """A guarded counter upsert of `key`: each message's share is applied unless that message
    is already in the key's guard list (`batches`); `build` makes the UpdateOne."""

    key: str
    shares: tuple[tuple[str, Any], ...]  # (message id, its MinuteCount or HostCount for this key)
    build: Callable[[str, Sequence[tuple[str, Any]]], UpdateOne]

    def update(self) -> UpdateOne:
        return self.build(self.key, self.shares)

    def per_message(self) -> list[_Guarded]:
        return [_Guarded(self.key, (share,), self.build) for share in self.shares]


class Store:
    def __init__(self, cfg: MongoConfig, listeners: Sequence[CommandListener] = ()):
        """`listeners` see every command sent (tests count the inserts a batch costs)."""
        self.cfg = cfg
        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            cfg.uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, socketTimeoutMS=60000,
            w=cfg.write_concern, journal=cfg.journal, retryWrites=True, tz_aware=True,
            event_listeners=list(listeners))
        self.db = self.client[cfg.database]
        self.logs = self.db["logs"]
        self.rollups = self.db["rollups"]
        self.hosts = self.db["hosts"]
        self.text_search = False
        self._trimmed_at = float("-inf")  # trim once soon after a start, then every GUARD_TRIM_EVERY

    def close(self) -> None:
        # close() tells the server to end our sessions; a server that is down would hold it
        # for the whole server-selection timeout, delaying a worker's exit.
        with pymongo.timeout(1.0):
            self.client.close()

    def ping(self, timeout: float = 2.0) -> bool:
        """True if the database answers within `timeout` (for /healthz, which must answer fast)."""
        try:
            with pymongo.timeout(timeout):
                self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    def init(self) -> None:
        """Create the indexes that are missing, apply `retention`, and detect `$text` support once."""
        try:
            retention = int(self.cfg.retention) if self.cfg.retention else None
            _ensure_indexes(self.logs, LOG_INDEXES)
            _ensure_ttl(self.logs, "received_at", retention, plain_otherwise=False)
            _ensure_indexes(self.rollups, ROLLUP_INDEXES)
            # `u` (last update) serves guard trimming, and expires idle rollups with their logs.
            _ensure_ttl(self.rollups, "u", retention, plain_otherwise=True)
            self.text_search = self._detect_text_search()
        except PyMongoError as exc:
            raise _translate(exc) from exc
        log.info("database %s ready (retention: %s; full-text search: %s)", self.cfg.database,
                 f"{retention}s" if retention else "none",
                 "$text index" if self.text_search else "bounded substring, the server has no $text")

    def _detect_text_search(self) -> bool:
        if any(_is_text(info["key"]) for info in self.logs.index_information().values()):
            return True
        try:
            self.logs.create_index([("message", "text")], name="message_text")
            return True
        except OperationFailure:
            return False

    def write(self, messages: list[Message], timeout: float | None = None) -> WriteResult:
        """Store every document of `messages` once and count each once in rollups/hosts.

        `timeout` bounds the whole write (a worker shutting down has a deadline); on
        expiry it is StoreUnavailable, and the redelivery completes what was written."""
        if timeout is None:
            return self._write(messages)
        try:
            with pymongo.timeout(timeout):
                return self._write(messages)
        except PyMongoError as exc:
            raise _translate(exc) from exc

    def _write(self, messages: list[Message]) -> WriteResult:
        docs = [doc for message in messages for doc in message.docs]
        if not docs:
            return WriteResult()
        try:
            inserted = self._insert(docs)
            if inserted.rejected:
                messages = [Message(m.id, [d for d in m.docs if d["_id"] not in inserted.rejected])
                            for m in messages]
            self._apply_counts(messages, self._counted(messages, inserted.duplicate_ids))
            self._trim_guards()
        except PyMongoError as exc:
            raise _translate(exc) from exc
        return WriteResult(inserted=len(docs) - inserted.duplicates - len(inserted.rejected),
                           duplicates=inserted.duplicates, rejected=inserted.rejected)

    def _insert(self, docs: list[dict[str, Any]]) -> _Inserted:
        """Insert unordered; which ids were already stored, and which the server will never take."""
        try:
            self.logs.insert_many(docs, ordered=False)
            return _Inserted()
        except BulkWriteError as exc:
            return _sort_write_errors(docs, exc.details)
        except (InvalidDocument, OverflowError):
            # The encoder refused a document before anything was sent: find it, store the rest.
            unencodable = _unencodable(docs)
            if not unencodable:
                raise
            rest = [d for d in docs if d["_id"] not in unencodable]
            inserted = self._insert(rest) if rest else _Inserted()
            inserted.rejected.update(unencodable)
            return inserted

    def _counted(self, messages: list[Message], duplicates: set[Any]) -> dict[str, list[dict[str, Any]]]:
        """Per message, the documents its rollups must count (see module docstring)."""
        if not duplicates:
            return {m.id: m.docs for m in messages}
        ids = list({m.id for m in messages})
        dup_ids = list(duplicates)
        earlier: set[tuple[str, Any]] = set()
        # Chunked: a long `$in` on `_id` costs some servers (SecantusDB) time quadratic in its length,
        # and a batch that is all duplicates (a redelivery) must not outlast the broker's heartbeat.
        for start in range(0, len(dup_ids), DUPLICATE_LOOKUP_CHUNK):
            chunk = dup_ids[start:start + DUPLICATE_LOOKUP_CHUNK]
            earlier.update((doc["batch"], doc["_id"]) for doc in self.logs.find(
                {"_id": {"$in": chunk}, "batch": {"$in": ids}}, {"_id": 1, "batch": 1}))
        return {m.id: [d for d in m.docs if d["_id"] not in duplicates or (m.id, d["_id"]) in earlier]
                for m in messages}

    def _apply_counts(self, messages: list[Message], counted: dict[str, list[dict[str, Any]]]) -> None:
        minutes: dict[str, list[tuple[str, MinuteCount]]] = {}
        hosts: dict[str, list[tuple[str, HostCount]]] = {}
        for message_id in dict.fromkeys(m.id for m in messages):  # a message sent twice: counted once
            counts = tally(counted[message_id])
            for c in counts.minutes:
                minutes.setdefault(c.key, []).append((message_id, c))
            for h in counts.hosts:
                hosts.setdefault(h.host, []).append((message_id, h))
        rollup_update = partial(_rollup_update, datetime.now(UTC))
        _apply_guarded(self.rollups, [_Guarded(key, tuple(shares), rollup_update) for key, shares in minutes.items()])
        _apply_guarded(self.hosts, [_Guarded(key, tuple(shares), _host_update) for key, shares in hosts.items()])

    def _trim_guards(self) -> None:
        if time.monotonic() - self._trimmed_at < GUARD_TRIM_EVERY:
            return
        self._trimmed_at = float("-inf")  # trim once soon after a start, then every GUARD_TRIM_EVERY
        cutoff = datetime.now(UTC) - GUARD_TTL
        self.rollups.update_many({"u": {"$lt": cutoff}, "batches": {"$exists": True}}, {"$unset": {"batches": ""}})


def _rollup_update(now: datetime, key: str, shares: Sequence[tuple[str, MinuteCount]]) -> UpdateOne:
    ids = [message_id for message_id, _ in shares]
    first = shares[0][1]
    return UpdateOne(
        {"_id": key, "batches": {"$nin": ids}},
        {"$inc": {"n": sum(c.n for _, c in shares)}, "$set": {"u": now},
         "$push": {"batches": {"$each": ids, "$slice": -GUARD_KEEP}},
         "$setOnInsert": {"t": first.minute, "host": first.host, "app": first.app, "level": first.level}},
        upsert=True)


def _host_update(key: str, shares: Sequence[tuple[str, HostCount]]) -> UpdateOne:
    counts = [h for _, h in shares]
    update: dict[str, Any] = {
        "$inc": {"records": sum(h.records for h in counts), "errors": sum(h.errors for h in counts)},
        "$min": {"first_seen": min(h.first_seen for h in counts if h.first_seen is not None)},
        "$max": {"last_seen": max(h.last_seen for h in counts if h.last_seen is not None)},
        "$addToSet": {"apps": {"$each": sorted(set().union(*(h.apps for h in counts)))},
                      "sources": {"$each": sorted(set().union(*(h.sources for h in counts)))}},
        "$push": {"batches": {"$each": [message_id for message_id, _ in shares], "$slice": -HOST_GUARD_KEEP}}}
    errors = [h.last_error for h in counts if h.last_error is not None]
    if errors:
        update["$max"]["last_error"] = max(errors)
    return UpdateOne({"_id": key, "batches": {"$nin": [message_id for message_id, _ in shares]}}, update,
                     upsert=True)


def _apply_guarded(collection: Collection[dict[str, Any]], ops: list[_Guarded]) -> None:
    """Apply each message's share of each key exactly once.

    First one upsert per key for all its messages: the common case, and what keeps a
    batch's cost independent of how many messages it holds. A key where that hits a
    duplicate (one of the messages was counted already, or another consumer was creating
    the key) goes again message by message, telling "already counted" from a race."""
    if not ops:
        return
    failed = _bulk_duplicates(collection, [op.update() for op in ops])
    ops = [single for i in failed for single in ops[i].per_message()]
    for _ in range(GUARD_ATTEMPTS):
        if not ops:
            return
        failed = _bulk_duplicates(collection, [op.update() for op in ops])
        ops = _not_counted(collection, [ops[i] for i in failed])
    if ops:
        raise StoreUnavailable(f"{collection.name}: keys still contended after {GUARD_ATTEMPTS} attempts")


def _bulk_duplicates(collection: Collection[dict[str, Any]], updates: list[UpdateOne]) -> list[int]:
    """Run the upserts unordered; the indexes of those that failed with a duplicate key."""
    try:
        collection.bulk_write(updates, ordered=False)
        return []
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            first = others[0] if others else exc.details["writeConcernErrors"][0]
            raise StoreUnavailable(f"{collection.name} update failed: code {first.get('code')}: "
                                   f"{first.get('errmsg')}") from None
        return [e["index"] for e in errors]


def _not_counted(collection: Collection[dict[str, Any]], ops: list[_Guarded]) -> list[_Guarded]:
    """Of upserts that hit a duplicate key, those whose message is not in their key's guard yet."""
    by_message: dict[str, list[_Guarded]] = {}
    for op in ops:  # each holds one message's share (see _apply_guarded)
        by_message.setdefault(op.shares[0][0], []).append(op)
    again = []
    for message_id, group in by_message.items():
        done = {d["_id"] for d in collection.find({"_id": {"$in": [op.key for op in group]}, "batches": message_id},
                                                  {"_id": 1})}
        again += [op for op in group if op.key not in done]
    if again:
        log.debug("%s: %d upserts raced another consumer creating the same keys; sending them again",
                  collection.name, len(again))
    return again


def _sort_write_errors(docs: list[dict[str, Any]], details: dict[str, Any]) -> _Inserted:
    """Duplicates are success, permanent refusals are rejected; anything else is retried."""
    result = _Inserted()
    transient = []
    for error in details.get("writeErrors", []):
        code, doc = error.get("code"), docs[error["index"]]
        if code == DUPLICATE_KEY:
            result.duplicate_ids.add(doc["_id"])
            result.duplicates += 1
        elif code in PERMANENT_CODES:
            result.rejected[doc["_id"]] = f"database refused the record: code {code}: {error.get('errmsg')}"
        else:
            transient.append(error)
    if transient or details.get("writeConcernErrors"):
        first = transient[0] if transient else details["writeConcernErrors"][0]
        raise StoreUnavailable(f"insert failed: code {first.get('code')}: {first.get('errmsg')}")
    return result


def _unencodable(docs: Iterable[dict[str, Any]]) -> dict[Any, str]:
    """The documents BSON cannot carry, with the reason (the slow path: one encode each)."""
    bad = {}
    for doc in docs:
        try:
            size = len(bson.encode(doc))
        except (InvalidDocument, OverflowError) as exc:
            bad[doc["_id"]] = f"record cannot be stored as BSON: {exc}"
            continue
        if size > MAX_DOCUMENT_BYTES:
            bad[doc["_id"]] = f"record is {size} bytes as BSON, over MongoDB's {MAX_DOCUMENT_BYTES}"
    return bad


def _key(spec: Any) -> tuple[tuple[str, Any], ...]:
    """An index key pattern in one comparable shape (the server may answer 1.0 for 1)."""
    items = spec.items() if hasattr(spec, "items") else spec
    return tuple((name, int(v) if isinstance(v, (int, float)) else v) for name, v in items)


def _is_text(spec: Any) -> bool:
    return any(v == "text" for _, v in _key(spec))


def _ensure_indexes(collection: Collection[dict[str, Any]], models: list[IndexModel]) -> None:
    """Create the indexes whose key pattern is missing, whatever name an existing one has."""
    existing = {_key(info["key"]) for info in collection.index_information().values()}
    missing = [m for m in models if _key(m.document["key"]) not in existing]
    if missing:
        collection.create_indexes(missing)


def _ensure_ttl(collection: Collection[dict[str, Any]], name: str, seconds: int | None,
                plain_otherwise: bool) -> None:
    """Make the single-field index on `name` expire documents after `seconds` (None: never).

    A changed retention is applied with collMod, which is instant; dropping and
    rebuilding the index would scan the whole collection."""
    key = ((name, 1),)
    current = next(((index, info) for index, info in collection.index_information().items()
                    if _key(info["key"]) == key), None)
    if current is None:
        if seconds is not None:
            collection.create_index([(name, ASCENDING)], name=name, expireAfterSeconds=seconds)
        elif plain_otherwise:
            collection.create_index([(name, ASCENDING)], name=name)
        return
    index, info = current
    if info.get("expireAfterSeconds") == seconds:
        return
    if seconds is not None:
        try:
            collection.database.command("collMod", collection.name,
                                        index={"name": index, "expireAfterSeconds": seconds})
            log.info("%s: documents now expire %ds after %s", collection.name, seconds, name)
            return
        except OperationFailure as exc:  # e.g. a server that cannot turn a plain index into a TTL one
            log.info("%s: collMod refused (%s); rebuilding index %s", collection.name, exc, index)
    collection.drop_index(index)
    if seconds is not None:
        collection.create_index([(name, ASCENDING)], name=name, expireAfterSeconds=seconds)
    elif plain_otherwise:
        collection.create_index([(name, ASCENDING)], name=name)
    log.info("%s: expiry on %s is now %s", collection.name, name, f"{seconds}s" if seconds else "off")


def _translate(exc: PyMongoError) -> StoreUnavailable:
    return StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
