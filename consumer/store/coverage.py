"""The `coverage` collection: per (host, file identity) the byte ranges of the file that are stored.

One document per file (or journal input: seqnums, not bytes; common.coverage): `{_id:
"<host>\\0<file>", host, file, names: [paths, or journal sources, its records came under], ranges:
[[start, end, newest and oldest received epoch s], ...] (sorted, disjoint, merged), cuts: [ends of
records cut at max_line_bytes], last_record_at, v}`. Each batch's records are merged into ranges in
memory (one pass, `batch_coverage`), then each file gets one update.

Merging ranges is idempotent (a union), so a redelivered batch changes nothing, as with the
rollups; several consumers are kept from overwriting each other by `v`, a version the update
must still find (optimistic concurrency): a file whose update lost the race is read again, and
merged again unless what it adds is there already.

Records without `file`/`len` (older shippers) have no coverage. `opslog verify` and the UI's
verify button recompute the ranges from the records themselves (`consumer.store.verify`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.collection import Collection

from common import coverage
from common.errors import StoreUnavailable
from common.record.heartbeats import heartbeat_id

ROUNDS = 5
MAX_CUTS = 256
MAX_NAME_CHARS = 4096
MAX_NAMES = 100  # names per file: a file has a few; a journal input one per unit, which can be many


class FileBatch:
    """What one batch adds to one file's coverage."""

    __slots__ = ("host", "file", "ranges", "start", "end", "names", "last", "first", "cuts")

    def __init__(self, host: str, file: str, start: int, end: int, received: datetime):
        self.host, self.file = host, file
        self.ranges: list[list[int]] = []  # closed runs; the open one is [start, end)
        self.start, self.end = start, end
        self.names: set[str] = set()
        self.last = self.first = received
        self.cuts: list[int] = []

    def closed(self) -> list[list[int]]:
        newest, oldest = _epoch(self.last), _epoch(self.first)
        return coverage.merge([[s, e, newest, oldest] for s, e in [*self.ranges, [self.start, self.end]]])


def batch_coverage(docs: list[dict[str, Any]]) -> dict[str, FileBatch]:
    """The ranges a batch's documents cover, per file `_id`: the consumer's per-record cost of
    coverage (bench: consumer stage), so one pass with a fast path for the next line of a file."""
    files: dict[tuple[str, str], FileBatch] = {}
    acc: FileBatch | None = None
    last_key: tuple[str, str] | None = None
    last_source = None
    journal = False
    for doc in docs:
        file = doc.get("file")
        if file is None:
            continue
        offset, length = doc["offset"], doc["len"]
        key = (doc["host"], file)
        another_file = key != last_key
        if another_file:
            journal = file.startswith(coverage.JOURNAL)
        if journal:
            offset = coverage.record_start(True, offset, length)
        end = offset + length
        if another_file:
            acc = files.get(key)
            if acc is None:
                acc = files[key] = FileBatch(key[0], file, offset, end, doc["received_at"])
            last_key, last_source = key, None
        assert acc is not None
        if offset == acc.end:
            acc.end = end
        elif acc.start <= offset <= acc.end:
            if end > acc.end:
                acc.end = end
        else:
            acc.ranges.append([acc.start, acc.end])
            acc.start, acc.end = offset, end
        source = doc["source"]
        if source is not last_source:
            acc.names.add(source)
            last_source = source
            received = doc["received_at"]  # shared by a group's records: compared once per group
            if received > acc.last:
                acc.last = received
            elif received < acc.first:
                acc.first = received
        if "parse_error" in doc and not journal and doc["parse_error"].startswith(coverage.TRUNCATED_PREFIX):
            acc.cuts.append(end)  # the rest of the line is a gap (a cut journal entry covers its seqnum)
    return {heartbeat_id(host, file): acc for (host, file), acc in files.items()}


def apply_coverage(collection: Collection[dict[str, Any]], batch: dict[str, FileBatch]) -> None:
    """Merge `batch` into the files' documents: one read of them and one update command per
    round; a round again only for files another consumer updated meanwhile."""
    todo = dict(batch)
    for _ in range(ROUNDS):
        if not todo:
            return
        current = {d["_id"]: d for d in collection.find({"_id": {"$in": list(todo)}},
                                                         {"ranges": 1, "v": 1, "names": 1, "cuts": 1})}
        updates = []
        for key, acc in todo.items():
            update = _update(key, acc, current.get(key))
            if update is not None:
                updates.append(update)
        if not updates:
            return
        reply = collection.database.command({"update": collection.name, "updates": updates, "ordered": False,
                                             "writeConcern": collection.write_concern.document})
        if concern := reply.get("writeConcernError"):
            raise StoreUnavailable(f"coverage update: write concern failed: {concern.get('errmsg')}")
        errors = reply.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != 11000]
        if others:
            raise StoreUnavailable(f"coverage update failed: code {others[0].get('code')}: {others[0].get('errmsg')}")
        if not errors and reply.get("n", 0) >= len(updates):
            return
        todo = {key: acc for key, acc in todo.items() if key in {u["q"]["_id"] for u in updates}}
    raise StoreUnavailable(f"coverage: files still contended after {ROUNDS} rounds")


def _update(key: str, acc: FileBatch, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The guarded update merging `acc` into `doc` (None: a new file), or None if `doc` holds it all."""
    adds = acc.closed()
    epoch = _epoch(acc.last)
    names = sorted(n for n in acc.names if len(n) <= MAX_NAME_CHARS)[:MAX_NAMES]
    if doc is None:
        ranges, capped = coverage.cap(adds)
        new = {"host": acc.host, "file": acc.file, "names": names, "ranges": ranges, "cuts": acc.cuts[-MAX_CUTS:],
               "last_record_at": acc.last, "v": 1}
        if capped:
            new["capped"] = True
        return {"q": {"_id": key, "v": {"$exists": False}}, "u": {"$set": new}, "upsert": True}
    old = doc.get("ranges") or []
    known_cuts = set(doc.get("cuts") or [])
    new_cuts = [c for c in acc.cuts if c not in known_cuts]
    known_names = doc.get("names") or []
    new_names = [n for n in names if n not in known_names][:max(0, MAX_NAMES - len(known_names))]
    if coverage.contains(old, adds) and not new_cuts and not new_names:
        stale = all(r[2] >= epoch for r in old if len(r) > 2 and _overlaps(r, adds))
        if stale:
            return None  # a redelivery, or another consumer stored it already: nothing to change
    ranges, capped = coverage.cap(coverage.merge([*old, *adds]))
    fields: dict[str, Any] = {"ranges": ranges, "v": int(doc.get("v") or 0) + 1}
    if new_cuts:
        fields["cuts"] = [*(doc.get("cuts") or []), *new_cuts][-MAX_CUTS:]
    if capped:
        fields["capped"] = True
    update: dict[str, Any] = {"$set": fields, "$max": {"last_record_at": acc.last}}
    if new_names:
        update["$addToSet"] = {"names": {"$each": new_names}}
    return {"q": {"_id": key, "v": doc.get("v")}, "u": update}


def _overlaps(r: list[int], ranges: list[list[int]]) -> bool:
    return any(r[0] < e and s < r[1] for s, e, *_ in ranges)


_EPOCH = datetime(1970, 1, 1)


def _epoch(when: datetime) -> int:
    return int(when.timestamp()) if when.tzinfo else int((when - _EPOCH).total_seconds())
