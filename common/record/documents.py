"""Payload records into MongoDB `logs` documents, each checked against the schema, and back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.errors import PoisonMessage
from common.record.schema import (
    GROUP_FIELDS,
    LEVELS,
    MAX_FIELDS_DEPTH,
    MAX_FILE_CHARS,
    MAX_NAME_CHARS,
    ROW_LENGTH,
)
from common.record.wire import load_payload, v1_entries, v1_entry, v2_groups


def decode_documents(body: bytes, now: datetime | None = None) -> tuple[list[dict[str, Any]], list[tuple[Any, str]]]:
    """The MongoDB documents of a payload of either version, and the records that break the
    schema as (v1 entry, reason) pairs. PoisonMessage if the payload itself is unusable.

    `received_at` is the shipper's clock, so it is clamped to `now` (naive UTC; default:
    this machine's clock, the consumer's): a record cannot have arrived after it was
    decoded, and a forged time far ahead would keep it from expiring and pin its host's
    `last_seen`. A shipper whose clock runs ahead gets the consumer's time instead."""
    latest = datetime.now(_UTC).replace(tzinfo=None) if now is None else now
    payload = load_payload(body)
    docs: list[dict[str, Any]] = []
    rejected: list[tuple[Any, str]] = []
    if payload["v"] == 1:
        for entry in v1_entries(payload):
            try:
                docs.append(to_document(entry, latest))
            except PoisonMessage as exc:
                rejected.append((entry, exc.reason))
        return docs, rejected
    times: dict[float, datetime | None] = {}  # the lines of a batch share few distinct seconds
    for group in v2_groups(payload):
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
    records = group["records"]
    # Coverage (common.coverage): the file's identity and each record's byte length, from shippers
    # that send them; without them (older shippers, a malformed list) the records are stored as before.
    file, lengths = group.get("file"), group.get("lengths")
    if not (type(file) is str and 0 < len(file) <= MAX_FILE_CHARS and type(lengths) is list
            and len(lengths) == len(records)):
        file = lengths = None
    for i, rec in enumerate(records):
        if type(rec) is not list or len(rec) != ROW_LENGTH:
            rejected.append((v1_entry(group, rec, i), f"record is not an array of {ROW_LENGTH} values"))
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
                if file is not None:
                    length = lengths[i]  # type: ignore[index]
                    if type(length) is int and 0 <= length:
                        doc["file"], doc["len"] = file, length
                docs.append(doc)
                continue
        entry = v1_entry(group, rec, i)
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



_SCALARS = frozenset((str, int, float, bool, type(None)))
_REQUIRED = {"id": str, "host": str, "app": str, "source": str, "offset": int, "message": str}
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
    aware one costs a `utcoffset()` call and a new datetime per value (bench/README.md, "The record
    wire format"). Read back through a tz_aware client they are aware again."""
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
    file, length = entry.get("file"), entry.get("len")
    if (type(file) is str and 0 < len(file) <= MAX_FILE_CHARS and type(length) is int and length >= 0):
        doc["file"], doc["len"] = file, length  # optional: coverage only, never a reason to refuse a record
    return doc


def to_entry(doc: dict[str, Any]) -> dict[str, Any]:
    """A `logs` document back in its v1 payload form (to dead-letter a record the database refused)."""
    entry = {"id": doc["_id"], "ts": _epoch(doc["ts"]), "received_at": _epoch(doc["received_at"]),
             "host": doc["host"], "app": doc["app"], "source": doc["source"], "offset": doc["offset"],
             "message": doc["message"]}
    entry.update((key, doc[key]) for key in ("level", "fields", "parse_error", "file", "len") if key in doc)
    return entry


def _epoch(when: datetime) -> float:
    """A document time (naive means UTC) as epoch seconds."""
    return (when if when.tzinfo else when.replace(tzinfo=_UTC)).timestamp()

