"""The one package that writes to MongoDB (pymongo); `Store` is its face.

A batch is written in two idempotent steps, so retrying a whole batch after any
failure, or storing a redelivered message again, changes nothing:

1. `logs`: one unordered `insert` command. Each document has a deterministic `_id`;
   duplicate-key errors (11000) mean "already stored". Each document also
   carries `batch`, the id of the AMQP message that brought it.
2. `rollups` (per minute, host, app, level) and `hosts`: guarded `$inc`
   upserts that apply each message once (`consumer.store.counters`).
   The counted records of a message are those this attempt inserted plus those
   an earlier attempt of the same message inserted (`batch` equals its id);
   duplicates first stored by another message are counted by that one.

3. `field_catalogue`: the parsed fields each app's records carry, one bulk of
   `$inc` upserts per batch (`consumer.store.catalogue`; best effort).

`coverage` (the stored byte ranges per file, `consumer.store.coverage`) and `heartbeats` (the newest
per-file heartbeat, `consumer.store.heartbeats`) are written after both, idempotently too.

`attempts` holds the isolated attempts at suspect messages (`consumer.store.attempts`).

pymongo errors are translated here: connection trouble, no primary, timeouts
and write-concern failures are StoreUnavailable (retry); a document the server
or the BSON encoder will never take (too large, nested too deep, an integer over
64 bits, a NUL in a key, fails validation: `PERMANENT_CODES`) is reported back
as rejected, for the dead-letter queue, and only that document: a whole command
refused because of one document is halved until it is found.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
import pymongo
from bson.errors import InvalidDocument
from pymongo.errors import DocumentTooLarge, OperationFailure, PyMongoError
from pymongo.monitoring import CommandListener

from common.config import MongoConfig
from common.errors import StoreUnavailable
from common.verify import verify_files
from consumer.store.attempts import begin_attempt, end_attempt, ensure_attempts_ttl
from consumer.store.catalogue import FieldCatalogue
from consumer.store.counters import apply_counts, trim_guards
from consumer.store.coverage import apply_coverage, batch_coverage
from consumer.store.heartbeats import apply_heartbeats
from consumer.store.indexes import (
    FILE_STATE_INDEXES,
    LOG_INDEXES,
    ROLLUP_INDEXES,
    ensure_indexes,
    ensure_ttl,
    ensure_wildcard,
    field_indexes,
    is_text,
)
from consumer.store.writes import DUPLICATE_KEY, write_command

log = logging.getLogger(__name__)

DUPLICATE_LOOKUP_CHUNK = 500
# Write errors that retrying can never fix: the document goes to the dead-letter queue. From MongoDB's
# error_codes.yml: BadValue, Overflow (nested past the storage depth), InvalidBSON, DollarPrefixedFieldName,
# InvalidIdField, InvalidDBRef, EmptyFieldName, DottedFieldName (older servers), DocumentValidationFailure,
# BSONObjectTooLarge, KeyTooLong (an index key over 1 KiB, before 4.2), and 17419 (document grew past 16 MiB).
PERMANENT_CODES = {2, 15, 22, 52, 53, 55, 56, 57, 121, 10334, 17280, 17419}
# Refusals of a whole insert command that one of its documents causes: a real MongoDB validates the
# command's BSON first (200 levels at most: code 15), SecantusDB fails to decode it (BadValue). Halving
# the command finds the document(s), as for DocumentTooLarge.
COMMAND_DOCUMENT_CODES = {2, 15, 22, 10334}
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
GUARD_TRIM_EVERY = 300.0  # seconds between trims of idle rollups' guard lists


@dataclass
class Message:
    """The documents of one AMQP message, under its id (a hash of its body)."""

    id: str
    docs: list[dict[str, Any]]
    heartbeats: list[dict[str, Any]] = field(default_factory=list)  # a heartbeat message's documents


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
    refused_alone: int = 0  # documents whose insert command, holding them alone, was refused whole

    def merge(self, other: _Inserted) -> _Inserted:
        self.duplicate_ids |= other.duplicate_ids
        self.duplicates += other.duplicates
        self.rejected.update(other.rejected)
        self.refused_alone += other.refused_alone
        return self


class Store:
    def __init__(self, mongo_cfg: MongoConfig, listeners: Sequence[CommandListener] = ()):
        """`listeners` see every command sent (tests count the inserts a batch costs)."""
        self.mongo_cfg = mongo_cfg
        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            mongo_cfg.uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, socketTimeoutMS=60000,
            w=mongo_cfg.write_concern, journal=mongo_cfg.journal, retryWrites=True, tz_aware=True,
            event_listeners=list(listeners))
        self.db = self.client[mongo_cfg.database]
        self.logs = self.db["logs"]
        self.rollups = self.db["rollups"]
        self.hosts = self.db["hosts"]
        self.attempts = self.db["attempts"]
        self.catalogue = FieldCatalogue(self.db["field_catalogue"])

        self.coverage = self.db["coverage"]
        self.heartbeats = self.db["heartbeats"]
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
            retention = int(self.mongo_cfg.retention) if self.mongo_cfg.retention else None
            ensure_indexes(self.logs, LOG_INDEXES + field_indexes(self.mongo_cfg.field_indexes))
            if self.mongo_cfg.wildcard_index:
                ensure_wildcard(self.logs)
            ensure_ttl(self.logs, "received_at", retention, plain_otherwise=False)
            ensure_indexes(self.rollups, ROLLUP_INDEXES)
            # `u` (last update) serves guard trimming, and expires idle rollups with their logs.
            ensure_ttl(self.rollups, "u", retention, plain_otherwise=True)
            ensure_attempts_ttl(self.attempts)
            self.catalogue.init()
            ensure_indexes(self.coverage, FILE_STATE_INDEXES)
            ensure_indexes(self.heartbeats, FILE_STATE_INDEXES)
            # a file quiet for the whole retention has no records left: its coverage and heartbeat go too
            ensure_ttl(self.coverage, "last_record_at", retention, plain_otherwise=False)
            ensure_ttl(self.heartbeats, "at", retention, plain_otherwise=False)
            self.text_search = self._detect_text_search()
        except PyMongoError as exc:
            raise _translate(exc) from exc
        log.info("database %s ready (retention: %s; full-text search: %s)", self.mongo_cfg.database,
                 f"{retention}s" if retention else "none",
                 "$text index" if self.text_search else "bounded substring, the server has no $text")

    def _detect_text_search(self) -> bool:
        if any(is_text(info["key"]) for info in self.logs.index_information().values()):
            return True
        try:
            self.logs.create_index([("message", "text")], name="message_text")
            return True
        except OperationFailure:
            return False

    def verify(self, host: str | None, source: str | None, stale_after: float) -> list[dict[str, Any]]:
        """Each file's coverage recomputed from its records (common.verify)."""
        try:
            return verify_files(self.logs, self.coverage, self.heartbeats, host=host, source=source,
                                stale_after=stale_after, retention=self.mongo_cfg.retention)
        except PyMongoError as exc:
            raise _translate(exc) from exc

    def begin_attempt(self, message_id: str) -> int:
        """Record an isolated attempt at a suspect message; how many earlier ones the consumer died in."""
        try:
            return begin_attempt(self.attempts, message_id)
        except PyMongoError as exc:
            raise _translate(exc) from exc

    def end_attempt(self, message_id: str) -> None:
        """The suspect has an outcome: forget its attempts."""
        try:
            end_attempt(self.attempts, message_id)
        except PyMongoError as exc:
            raise _translate(exc) from exc

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
        beats = [beat for message in messages for beat in message.heartbeats]
        if not docs:
            if beats:
                try:
                    apply_heartbeats(self.heartbeats, beats)
                except PyMongoError as exc:
                    raise _translate(exc) from exc
            return WriteResult()
        try:
            inserted = self._insert(docs)
            if inserted.refused_alone == len(docs) > 1:
                # Every document alone refused with the command itself: the server refuses inserts, not these
                # records (a parameter it rejects): retry rather than dead-letter a whole healthy batch.
                raise StoreUnavailable(f"every insert refused: {next(iter(inserted.rejected.values()))}")
            if inserted.rejected:
                messages = [Message(m.id, [d for d in m.docs if d["_id"] not in inserted.rejected])
                            for m in messages]
            self._apply_counts(messages, self._counted(messages, inserted.duplicate_ids))
            # only what this attempt inserted: a redelivery is not catalogued twice (no guard list here)
            self.catalogue.record(d for m in messages for d in m.docs if d["_id"] not in inserted.duplicate_ids)
            # after the records: a heartbeat never claims bytes the records of its batch still lack
            apply_coverage(self.coverage, batch_coverage(
                [d for d in docs if d["_id"] not in inserted.rejected] if inserted.rejected else docs))
            if beats:
                apply_heartbeats(self.heartbeats, beats)
            self._trim_guards()
        except PyMongoError as exc:
            raise _translate(exc) from exc
        return WriteResult(inserted=len(docs) - inserted.duplicates - len(inserted.rejected),
                           duplicates=inserted.duplicates, rejected=inserted.rejected)

    def _insert(self, docs: list[dict[str, Any]]) -> _Inserted:
        """Insert unordered; which ids were already stored, and which the server will never take.

        One `insert` command (`consumer.store.writes`), limited to 16 MiB as a whole: pymongo
        refuses a larger one before sending it (DocumentTooLarge), and it goes again in halves;
        a lone document over it is rejected."""
        try:
            errors = write_command(self.logs, "insert", "documents", docs)
        except DocumentTooLarge as exc:
            if len(docs) == 1:
                return _Inserted(rejected={docs[0]["_id"]: f"record is too large to store: {exc}"})
            half = len(docs) // 2
            return self._insert(docs[:half]).merge(self._insert(docs[half:]))
        except OperationFailure as exc:
            if exc.code not in COMMAND_DOCUMENT_CODES:
                raise
            if len(docs) == 1:
                return _Inserted(rejected={docs[0]["_id"]: f"database refused the record: code {exc.code}: "
                                                           f"{_errmsg(exc)}"}, refused_alone=1)
            half = len(docs) // 2
            return self._insert(docs[:half]).merge(self._insert(docs[half:]))
        except (InvalidDocument, OverflowError, RecursionError):
            # The encoder refused a document before anything was sent (RecursionError: nested past
            # about 990 levels, which JSON payloads reach): find it, store the rest.
            unencodable = _unencodable(docs)
            if not unencodable:
                raise
            rest = [d for d in docs if d["_id"] not in unencodable]
            return (self._insert(rest) if rest else _Inserted()).merge(_Inserted(rejected=unencodable))
        return _sort_write_errors(docs, errors)

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
        # dict.fromkeys: a message sent twice (the same body in one batch) is counted once
        apply_counts(self.rollups, self.hosts, {m: counted[m] for m in dict.fromkeys(m.id for m in messages)})

    def _trim_guards(self) -> None:
        if time.monotonic() - self._trimmed_at < GUARD_TRIM_EVERY:
            return
        self._trimmed_at = time.monotonic()
        trim_guards(self.rollups)


def _sort_write_errors(docs: list[dict[str, Any]], errors: list[dict[str, Any]]) -> _Inserted:
    """An insert's write errors: duplicates are success, permanent refusals are rejected;
    anything else is retried."""
    result = _Inserted()
    transient = []
    for error in errors:
        code, doc = error.get("code"), docs[error["index"]]
        if code == DUPLICATE_KEY:
            result.duplicate_ids.add(doc["_id"])
            result.duplicates += 1
        elif code in PERMANENT_CODES:
            result.rejected[doc["_id"]] = f"database refused the record: code {code}: {error.get('errmsg')}"
        else:
            transient.append(error)
    if transient:
        raise StoreUnavailable(f"insert failed: code {transient[0].get('code')}: {transient[0].get('errmsg')}")
    return result


def _unencodable(docs: Iterable[dict[str, Any]]) -> dict[Any, str]:
    """The documents BSON cannot carry, with the reason (the slow path: one encode each)."""
    bad = {}
    for doc in docs:
        try:
            size = len(bson.encode(doc))
        except (InvalidDocument, OverflowError, RecursionError) as exc:
            bad[doc["_id"]] = f"record cannot be stored as BSON: {type(exc).__name__}: {exc}"
            continue
        if size > MAX_DOCUMENT_BYTES:
            bad[doc["_id"]] = f"record is {size} bytes as BSON, over MongoDB's {MAX_DOCUMENT_BYTES}"
    return bad


def _errmsg(exc: OperationFailure) -> str:
    return str((exc.details or {}).get("errmsg") or exc)


def _translate(exc: PyMongoError) -> StoreUnavailable:
    return StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
