"""The one record schema, and its wire forms.

A `Record` is one log line (or one multiline event) as the shipper read it. It
travels to RabbitMQ inside a batch payload, and the consumer turns each record
of a payload into a MongoDB `logs` document (`decode_documents`).

Payload v2, what shippers send::

    {"v": 2, "groups": [{"host": H, "app": A, "source": S, "received_at": T,
                         "records": [[id, offset, ts, message, level, fields, parse_error], ...]},
                        ...]}

A group is a run of records read from one file at one time (the shipper makes
one per `Shipper._add_records` call, records made by shipper.records), so what they share is written once; a
record is an array in the order of `ROW_FIELDS`, where `ts`, `level`, `fields`
and `parse_error` may be null (a null `ts`: the line has no time of its own,
and the document gets `received_at`). Next to v1: no dict per record to build
or to parse, fewer bytes, and `received_at` converted once per group (figures:
bench/README.md, "Figures behind design choices in the code").

Payload v1, what older shippers send::

    {"v": 1, "records": [{"id", "ts", "received_at", "host", "app", "source", "offset",
                          "message", "level"?, "fields"?, "parse_error"?}, ...]}

Consumers take both, so shippers can be upgraded one at a time once the
consumers are (an older consumer dead-letters v2 as unknown). v1 stays the
self-describing form: dead-letter messages use it (each record readable and
fixable on its own, and the message publishable again as it is), and
`decode_batch` gives the records of any payload in it, for tools and tests.
Times are epoch seconds on the wire; in documents, naive datetimes in UTC (`to_document`).

Record id: a hash of (host, file fingerprint, byte offset, raw bytes). The
fingerprint identifies the file's content, not its path, so the same line
re-read after a crash, a lost registry, a rename or a redelivery gets the same
`_id`; new content at a reused offset (truncation, inode reuse) gets a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from common.errors import PoisonMessage

PAYLOAD_VERSION = 2  # what encoders write; v1 is still decoded
# Deeper `fields` are refused (dead-lettered) whatever the publisher: MongoDB documents 100 levels,
# SecantusDB stores past it, and the UI's encoder (orjson) writes at most 254. Our shipper keeps 20.
MAX_FIELDS_DEPTH = 100
LEVELS = ("debug", "info", "warning", "error", "critical")
ERROR_LEVELS = ("error", "critical")  # the levels counted as errors (hosts' error counts, the tally)
GROUP_FIELDS = ("host", "app", "source", "received_at")
ROW_FIELDS = ("id", "offset", "ts", "message", "level", "fields", "parse_error")


class IdHasher:
    """Record ids for the lines of one file: the (host, fingerprint) prefix is hashed once,
    which the shipper's hot path needs (formatting the whole key per line costs as much as parsing)."""

    __slots__ = ("_copy",)

    def __init__(self, host: str, fingerprint: str):
        self._copy = hashlib.blake2b(f"{host}\0{fingerprint}\0".encode(), digest_size=12).copy

    def __call__(self, offset: int, raw: bytes) -> str:
        digest = self._copy()
        digest.update(b"%d\0" % offset)
        digest.update(raw)
        return digest.hexdigest()


def record_id(host: str, fingerprint: str, offset: int, raw: bytes) -> str:
    return IdHasher(host, fingerprint)(offset, raw)


# -- encoding --------------------------------------------------------------------


def row(record_id: str, offset: int, ts: float | None, message: str, level: str | None,
        fields: dict[str, Any] | None, parse_error: str | None) -> tuple[Any, ...]:
    """One record of a v2 group (orjson writes the tuple as an array)."""
    return (record_id, offset, ts, message, level, fields, parse_error)


class BatchBuilder:
    """A v2 payload being filled. The shipper's hot path appends `row(...)`s to the list that
    `group()` returns: no dict per record, and nothing a group shares is repeated."""

    __slots__ = ("_groups", "_before")

    def __init__(self) -> None:
        self._groups: list[dict[str, Any]] = []
        self._before = 0  # records in the groups before the last one

    def __len__(self) -> int:
        return self._before + len(self._groups[-1]["records"]) if self._groups else 0

    def group(self, host: str, app: str, source: str, received_at: float) -> list[tuple[Any, ...]]:
        """The record list of a new group: append `row(...)`s to it."""
        self._before = len(self)
        rows: list[tuple[Any, ...]] = []
        self._groups.append({"host": host, "app": app, "source": source, "received_at": received_at,
                             "records": rows})
        return rows

    def encode(self) -> bytes:
        """The AMQP message body. A group left empty (its batch filled up just before) is not sent.

        A record whose fields orjson cannot write (nested past 254 levels, an integer over 64
        bits) must not cost the batch its other records: it goes raw, flagged in `parse_error`."""
        groups = [g for g in self._groups if g["records"]]
        try:
            return orjson.dumps({"v": PAYLOAD_VERSION, "groups": groups})
        except orjson.JSONEncodeError:
            for group in groups:
                group["records"] = [_encodable(rec) for rec in group["records"]]
            return orjson.dumps({"v": PAYLOAD_VERSION, "groups": groups})


def _encodable(rec: tuple[Any, ...]) -> tuple[Any, ...]:
    """A v2 row orjson can write: itself, or without its fields and with the reason in `parse_error`."""
    try:
        orjson.dumps(rec)
        return rec
    except orjson.JSONEncodeError as exc:
        record_id, offset, ts, message, level, _, error = rec
        reason = f"fields cannot be encoded ({exc}); the line is kept raw"
        return row(record_id, offset, ts, message, level, None, f"{error}; {reason}" if error else reason)


@dataclass(slots=True)
class Record:
    id: str
    host: str
    app: str
    source: str
    offset: int
    message: str
    received_at: float
    ts: float | None = None
    level: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    parse_error: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The record's v1 payload entry."""
        wire = {"id": self.id, "ts": self.received_at if self.ts is None else self.ts,
                "received_at": self.received_at, "host": self.host, "app": self.app, "source": self.source,
                "offset": self.offset, "message": self.message}
        if self.level:
            wire["level"] = self.level
        if self.fields:
            wire["fields"] = self.fields
        if self.parse_error:
            wire["parse_error"] = self.parse_error
        return wire


def encode_batch(records: Sequence[Record], version: int = PAYLOAD_VERSION) -> bytes:
    """The AMQP message body for `records`: v2 (one group per run of records sharing host, app,
    source and received_at), or v1 as older shippers send it."""
    if version == 1:
        return orjson.dumps({"v": 1, "records": [r.to_wire() for r in records]})
    builder = BatchBuilder()
    rows: list[tuple[Any, ...]] = []
    shared = None
    for r in records:
        if (r.host, r.app, r.source, r.received_at) != shared:
            shared = (r.host, r.app, r.source, r.received_at)
            rows = builder.group(*shared)
        rows.append(row(r.id, r.offset, r.ts, r.message, r.level, r.fields, r.parse_error))
    return builder.encode()


def encode_rejected(rejected: Sequence[tuple[Any, str]]) -> bytes:
    """The dead-letter body for (v1 entry, reason) pairs: a v1 payload plus the `reasons`.

    An entry whose fields orjson cannot write (a hostile payload nested past 254 levels) is
    parked without them, with why in its `parse_error`: replayed, its line is stored raw."""
    reasons = [reason for _, reason in rejected]
    try:
        return orjson.dumps({"v": 1, "records": [entry for entry, _ in rejected], "reasons": reasons}, default=str)
    except orjson.JSONEncodeError:
        return orjson.dumps({"v": 1, "records": [_parkable(entry) for entry, _ in rejected], "reasons": reasons},
                            default=str)


def _parkable(entry: Any) -> Any:
    """A v1 entry orjson can write: itself, or without its fields, or a note where it was."""
    try:
        orjson.dumps(entry, default=str)
        return entry
    except orjson.JSONEncodeError as exc:
        why = exc
    if isinstance(entry, dict) and "fields" in entry:
        error, reason = entry.get("parse_error"), f"fields cannot be encoded ({why}); the line is kept raw"
        slim = {**entry, "fields": None, "parse_error": f"{error}; {reason}" if isinstance(error, str) else reason}
        try:
            orjson.dumps(slim, default=str)
            return slim
        except orjson.JSONEncodeError:
            pass
    return {"unencodable": f"the record cannot be written as JSON: {why}"}


# -- decoding --------------------------------------------------------------------


def _payload(body: bytes) -> dict[str, Any]:
    """The payload object, its version checked; PoisonMessage if it is none of ours."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict) or type(payload.get("v")) is not int or payload["v"] not in (1, 2):
        raise PoisonMessage("payload is not an opslog batch v1 or v2")
    return payload


def _entries(payload: dict[str, Any]) -> list[Any]:
    """A v1 payload's record entries."""
    records = payload.get("records")
    if not isinstance(records, list):
        raise PoisonMessage("payload has no 'records' list")
    return records


def _groups(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A v2 payload's groups, each an object with a `records` list."""
    groups = payload.get("groups")
    if not isinstance(groups, list):
        raise PoisonMessage("payload has no 'groups' list")
    if not all(isinstance(g, dict) and isinstance(g.get("records"), list) for g in groups):
        raise PoisonMessage("payload group is not an object with a 'records' list")
    return groups


def _entry(group: dict[str, Any], rec: Any) -> dict[str, Any]:
    """A v2 record in its v1 form. Nulls are left out, as v1 leaves out what a record does not
    have; a record that is not an array of the right length is kept whole under `record`."""
    if isinstance(rec, list) and len(rec) == _ROW_LENGTH:
        entry = {key: value for key, value in zip(ROW_FIELDS, rec, strict=True) if value is not None}
    else:
        entry = {"record": rec}
    entry.update((key, group[key]) for key in GROUP_FIELDS if key in group)
    return entry


def decode_batch(body: bytes) -> list[Any]:
    """The records of a payload of either version, as v1 entries (dicts with "id"...): for tools
    and tests. PoisonMessage if the payload itself is unusable."""
    payload = _payload(body)
    if payload["v"] == 1:
        return _entries(payload)
    return [_entry(group, rec) for group in _groups(payload) for rec in group["records"]]


def decode_documents(body: bytes, now: datetime | None = None) -> tuple[list[dict[str, Any]], list[tuple[Any, str]]]:
    """The MongoDB documents of a payload of either version, and the records that break the
    schema as (v1 entry, reason) pairs. PoisonMessage if the payload itself is unusable.

    `received_at` is the shipper's clock, so it is clamped to `now` (naive UTC; default:
    this machine's clock, the consumer's): a record cannot have arrived after it was
    decoded, and a forged time far ahead would keep it from expiring and pin its host's
    `last_seen`. A shipper whose clock runs ahead gets the consumer's time instead."""
    latest = datetime.now(_UTC).replace(tzinfo=None) if now is None else now
    payload = _payload(body)
    docs: list[dict[str, Any]] = []
    rejected: list[tuple[Any, str]] = []
    if payload["v"] == 1:
        for entry in _entries(payload):
            try:
                docs.append(to_document(entry, latest))
            except PoisonMessage as exc:
                rejected.append((entry, exc.reason))
        return docs, rejected
    times: dict[float, datetime | None] = {}  # the lines of a batch share few distinct seconds
    for group in _groups(payload):
        _group_documents(group, times, docs, rejected, latest)
    return docs, rejected


def _group_documents(group: dict[str, Any], times: dict[float, datetime | None], docs: list[dict[str, Any]],
                     rejected: list[tuple[Any, str]], latest: datetime) -> None:
    """The consumer's hot path: it builds what `to_document` makes of the record's v1 entry,
    with the same checks spelled for speed (`type(x) is`: JSON gives no subclasses, and a bool
    is no int). A record failing them goes through `to_document`, which names the reason."""
    host, app, source, received = (group.get(key) for key in GROUP_FIELDS)
    received_at = _datetime(received) if type(received) is float or type(received) is int else None
    if received_at is not None and received_at > latest:
        received_at = latest
    shared_ok = (received_at is not None and type(host) is str and type(app) is str and type(source) is str
                 and len(host) <= MAX_NAME_CHARS and len(app) <= MAX_NAME_CHARS)
    for rec in group["records"]:
        if type(rec) is not list or len(rec) != _ROW_LENGTH:
            rejected.append((_entry(group, rec), f"record is not an array of {_ROW_LENGTH} values"))
            continue
        if shared_ok:
            rid, offset, ts, message, level, fields, error = rec
            if ts is None:
                when = received_at
            elif type(ts) is float or type(ts) is int:
                when = times.get(ts)
                if when is None:
                    when = times[ts] = _datetime(ts)
            else:
                when = None
            if (when is not None and type(rid) is str and type(offset) is int and type(message) is str
                    and (level is None or (type(level) is str and level in _LEVELS))
                    and (fields is None or (type(fields) is dict and (_SCALARS.issuperset(map(type, fields.values()))
                                                                      or not _too_deep(fields, MAX_FIELDS_DEPTH))))
                    and (error is None or type(error) is str)):
                doc = {"_id": rid, "ts": when, "received_at": received_at, "host": host, "app": app,
                       "source": source, "offset": offset, "message": message}
                if level is not None:
                    doc["level"] = level
                doc["fields"] = {} if fields is None else fields
                if error:
                    doc["parse_error"] = error
                docs.append(doc)
                continue
        entry = _entry(group, rec)
        try:
            docs.append(to_document(entry, latest))
        except PoisonMessage as exc:
            rejected.append((entry, exc.reason))


def _too_deep(value: dict[str, Any] | list[Any], room: int) -> bool:
    """True if `value` nests more than `room` levels (stops there: never recurses deeper)."""
    if room <= 0:
        return True
    for item in value.values() if type(value) is dict else value:
        if (type(item) is dict or type(item) is list) and _too_deep(item, room - 1):
            return True
    return False


_ROW_LENGTH = len(ROW_FIELDS)
_SCALARS = frozenset((str, int, float, bool, type(None)))
_REQUIRED = {"id": str, "host": str, "app": str, "source": str, "offset": int, "message": str}
# Host and app names make the `_id` of the rollups and hosts documents: a record naming a host of
# megabytes would make counter updates past MongoDB's 16 MB that no retry can store.
MAX_NAME_CHARS = 1024
_LEVELS = frozenset(LEVELS)
_UTC = UTC


def _datetime(value: float) -> datetime | None:
    """Epoch seconds as a document time: a naive datetime in UTC (see `to_document`)."""
    try:
        return datetime.fromtimestamp(value, _UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def _time(value: Any, key: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PoisonMessage(f"record field '{key}' must be epoch seconds")
    when = _datetime(value)
    if when is None:
        raise PoisonMessage(f"record field '{key}' is out of range: {value!r}")
    return when


def to_document(entry: Any, latest: datetime | None = None) -> dict[str, Any]:
    """The MongoDB `logs` document for one v1 payload entry; PoisonMessage if it breaks the schema.
    A `received_at` after `latest` (naive UTC) becomes `latest` (see `decode_documents`).

    `ts` and `received_at` are naive datetimes in UTC, which pymongo stores as UTC: encoding an
    aware one costs a `utcoffset()` call and a new datetime per value, 0.6 of the 3.7 µs pymongo
    spent encoding an nginx record. Read back through a tz_aware client they are aware again."""
    if not isinstance(entry, dict):
        raise PoisonMessage("record is not an object")
    for key, kind in _REQUIRED.items():
        value = entry.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise PoisonMessage(f"record field '{key}' is missing or not {kind.__name__}")
    for key in ("host", "app"):
        if len(entry[key]) > MAX_NAME_CHARS:
            raise PoisonMessage(f"record field '{key}' is longer than {MAX_NAME_CHARS} characters")
    received_at = _time(entry.get("received_at"), "received_at")
    if latest is not None and received_at > latest:
        received_at = latest
    doc: dict[str, Any] = {
        "_id": entry["id"],
        "ts": _time(entry["ts"], "ts") if "ts" in entry else received_at,
        "received_at": received_at,
        "host": entry["host"], "app": entry["app"], "source": entry["source"],
        "offset": entry["offset"], "message": entry["message"],
    }
    level = entry.get("level")
    if level is not None:
        if level not in LEVELS:
            raise PoisonMessage(f"record field 'level' is not one of {', '.join(LEVELS)}")
        doc["level"] = level
    fields = entry.get("fields")
    if fields is not None:
        if not isinstance(fields, dict):
            raise PoisonMessage("record field 'fields' must be an object")
        if _too_deep(fields, MAX_FIELDS_DEPTH):
            raise PoisonMessage(f"record field 'fields' nests deeper than {MAX_FIELDS_DEPTH} levels")
        doc["fields"] = fields
    else:
        doc["fields"] = {}
    error = entry.get("parse_error")
    if error:
        if not isinstance(error, str):  # str() of a hostile nested value could recurse too deep
            raise PoisonMessage("record field 'parse_error' must be a string")
        doc["parse_error"] = error
    return doc


def to_entry(doc: dict[str, Any]) -> dict[str, Any]:
    """A `logs` document back in its v1 payload form (to dead-letter a record the database refused)."""
    entry = {"id": doc["_id"], "ts": _epoch(doc["ts"]), "received_at": _epoch(doc["received_at"]),
             "host": doc["host"], "app": doc["app"], "source": doc["source"], "offset": doc["offset"],
             "message": doc["message"]}
    entry.update((key, doc[key]) for key in ("level", "fields", "parse_error") if key in doc)
    return entry


def _epoch(when: datetime) -> float:
    """A document time (naive means UTC) as epoch seconds."""
    return (when if when.tzinfo else when.replace(tzinfo=_UTC)).timestamp()
