"""Per-file heartbeats: the shipper's word on each file it reads, every few seconds, as a message
of its own kind on the records' exchange (header `x-opslog-kind: heartbeat`)::

    {"kind": "heartbeat", "v": 1, "host": H, "at": T, "interval": seconds,
     "files": [{"file": F, "source": S, "names": [...], "size": n, "confirmed": n,
                "inode": "dev:ino", "fingerprint": fp, "mtime": T, "state": "reading"}, ...]}

`file` is the file's identity (the records' `file`), `source` its current path, `names` every
name it was read under (rotated ones first), `confirmed` how far the broker confirmed it, `state`
one of STATES: `reading` (open), `idle` (released until it grows, or rotated away and read
to its end), `truncated` (this content is gone: what was not read of it is lost),
`deleted`. The consumer keeps the newest per (host, file) in `heartbeats` (`to_documents`).

A journald input is one entry too, counted in seqnums (common.coverage): `file` its journal
identity, `source` and `names` the input's key (`journal:system`), `size` one past the last
seqnum it read, `confirmed` one past the last the broker confirmed, no inode, fingerprint or
mtime, and `skipped`: the last MAX_SKIPPED `[start, end)` spans of seqnums the journal no
longer held when the input came to them (vacuumed), so a gap there is told apart.

An older consumer cannot read this kind: it dead-letters each heartbeat as "not an opslog batch"
(the records are unaffected). Upgrade the consumers first, or set `shipper.heartbeat_interval: 0`
until then.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from common.errors import PoisonMessage
from common.record.schema import MAX_FILE_CHARS, MAX_NAME_CHARS

KIND_HEADER = "x-opslog-kind"
KIND = "heartbeat"
VERSION = 1
STATES = ("reading", "idle", "truncated", "deleted")
MAX_FILES = 10_000
MAX_NAMES = 8
MAX_PATH_CHARS = 4096
MAX_SKIPPED = 16


def encode(host: str, at: float, interval: float, files: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"kind": KIND, "v": VERSION, "host": host, "at": at, "interval": interval, "files": files})


def heartbeat_id(host: str, file: str) -> str:
    """The `_id` of a file's document in `heartbeats` (and in `coverage`)."""
    return f"{host}\0{file}"


def _when(value: Any, what: str) -> datetime:
    if type(value) not in (int, float):
        raise PoisonMessage(f"heartbeat field '{what}' must be epoch seconds")
    try:
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise PoisonMessage(f"heartbeat field '{what}' is out of range") from None


def to_documents(body: bytes, now: datetime | None = None) -> list[dict[str, Any]]:
    """The `heartbeats` documents of a heartbeat message (naive UTC times, `at` clamped to `now`
    as records' `received_at` are); PoisonMessage if it is unusable. A file entry that breaks
    the form is skipped: the next heartbeat brings it again."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage(f"heartbeat is not JSON: {exc}") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND or payload.get("v") != VERSION:
        raise PoisonMessage(f"not an opslog heartbeat v{VERSION}")
    host, files = payload.get("host"), payload.get("files")
    if type(host) is not str or not host or len(host) > MAX_NAME_CHARS or type(files) is not list:
        raise PoisonMessage("heartbeat has no host or no 'files' list")
    latest = datetime.now(UTC).replace(tzinfo=None) if now is None else now
    at = min(_when(payload.get("at"), "at"), latest)
    interval = payload.get("interval")
    interval = float(interval) if type(interval) in (int, float) and 0 < interval < 86400 else None
    docs = []
    for item in files[:MAX_FILES]:
        doc = _file_document(host, at, item)
        if doc is not None:
            doc["interval"] = interval
            docs.append(doc)
    return docs


def _file_document(host: str, at: datetime, item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    file, source, state = item.get("file"), item.get("source"), item.get("state", "reading")
    size, confirmed = item.get("size"), item.get("confirmed")
    if (type(file) is not str or not 0 < len(file) <= MAX_FILE_CHARS or type(source) is not str
            or len(source) > MAX_PATH_CHARS or state not in STATES or type(size) is not int
            or type(confirmed) is not int or size < 0 or confirmed < 0):
        return None
    names = [n for n in item.get("names") or [] if type(n) is str and len(n) <= MAX_PATH_CHARS][-MAX_NAMES:]
    if source not in names:
        names.append(source)
    mtime = item.get("mtime")
    skipped = item.get("skipped")
    doc: dict[str, Any] = {
        "_id": heartbeat_id(host, file), "host": host, "file": file, "source": source, "names": names,
        "size": size, "confirmed": confirmed, "state": state, "at": at,
        "inode": item.get("inode") if type(item.get("inode")) is str else None,
        "fingerprint": item.get("fingerprint") if type(item.get("fingerprint")) is str else None,
        "mtime": _mtime(mtime),
    }
    if type(skipped) is list:  # a journal input: spans the journal no longer held when it was read
        doc["skipped"] = [span for span in skipped[-MAX_SKIPPED:] if type(span) is list and len(span) == 2
                          and all(type(n) is int for n in span)]
    return doc


def _mtime(value: Any) -> datetime | None:
    try:
        return _when(value, "mtime")
    except PoisonMessage:
        return None  # a file's odd clock is no reason to drop its heartbeat
