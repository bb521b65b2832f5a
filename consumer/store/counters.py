"""The `rollups` and `hosts` counters, counted once per message however often it comes.

Each key (a rollup's "minute|host|app|level", a host's name) gets one `$inc`
upsert per batch, whose filter is `{_id: key, batches: {$nin: message ids}}`
and which pushes those message ids onto `batches`, atomically in the same
document; so the cost of a batch does not grow with its message count. When
one of the messages was already applied to the key, it no longer matches; the
upsert then hits the key's `_id` and fails with 11000. That answer is
ambiguous: it also comes back when another consumer created the key between
our match and our insert. So such a key is sent again message by message, the
keys that fail then are read back, and the upserts whose message id is not in
`batches` are sent again (the key exists now, so they match and apply).

The guard lists are capped (GUARD_KEEP ids per rollup, HOST_GUARD_KEEP per
host) and emptied once a rollup is idle for GUARD_TTL, bounding their size; a
message redelivered after that long (or after that many later messages of its
host) would be counted again (documented limit; its records are still stored once).

A host's `apps` and `sources` lists keep the first HOST_LIST_KEEP names, and
names longer than HOST_NAME_MAX characters are counted but not listed: shippers
choose these names, and a document past MongoDB's 16 MB would fail every update
of its host, which the consumer could only retry forever. The host update is an
aggregation pipeline (MongoDB 4.2+) so the cap is applied in the same atomic write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pymongo.collection import Collection

from common.errors import StoreUnavailable
from consumer.store.writes import DUPLICATE_KEY, write_command
from consumer.tally import HostCount, MinuteCount, tally

log = logging.getLogger(__name__)

GUARD_KEEP = 4096
HOST_GUARD_KEEP = 512
GUARD_TTL = timedelta(hours=1)
GUARD_ATTEMPTS = 5
HOST_LIST_KEEP = 1000  # apps, and sources, listed per host: at most 2 x 1000 x 4 KiB
HOST_NAME_MAX = 1024  # characters; a path longer than that is counted, not listed


@dataclass(frozen=True)
class _Guarded:
    """A guarded counter upsert of `key`: each message's share is applied unless that message
    is already in the key's guard list (`batches`); `build` makes the update statement."""

    key: str
    shares: tuple[tuple[str, Any], ...]  # (message id, its MinuteCount or HostCount for this key)
    build: Callable[[str, Sequence[tuple[str, Any]]], dict[str, Any]]

    def update(self) -> dict[str, Any]:
        return self.build(self.key, self.shares)

    def per_message(self) -> list[_Guarded]:
        return [_Guarded(self.key, (share,), self.build) for share in self.shares]


def apply_counts(rollups: Collection[dict[str, Any]], hosts: Collection[dict[str, Any]],
                 counted: dict[str, list[dict[str, Any]]]) -> None:
    """Count `counted` (message id -> the documents that message counts) into rollups and hosts."""
    minutes: dict[str, list[tuple[str, MinuteCount]]] = {}
    per_host: dict[str, list[tuple[str, HostCount]]] = {}
    for message_id, docs in counted.items():
        counts = tally(docs)
        for c in counts.minutes:
            minutes.setdefault(c.key, []).append((message_id, c))
        for h in counts.hosts:
            per_host.setdefault(h.host, []).append((message_id, h))
    rollup_update = partial(_rollup_update, datetime.now(UTC))
    _apply_guarded(rollups, [_Guarded(key, tuple(shares), rollup_update) for key, shares in minutes.items()])
    _apply_guarded(hosts, [_Guarded(key, tuple(shares), _host_update) for key, shares in per_host.items()])


def trim_guards(rollups: Collection[dict[str, Any]]) -> None:
    """Empty the guard lists of rollups idle for GUARD_TTL (their minute is long past)."""
    cutoff = datetime.now(UTC) - GUARD_TTL
    rollups.update_many({"u": {"$lt": cutoff}, "batches": {"$exists": True}}, {"$unset": {"batches": ""}})


def _rollup_update(now: datetime, key: str, shares: Sequence[tuple[str, MinuteCount]]) -> dict[str, Any]:
    ids = [message_id for message_id, _ in shares]
    first = shares[0][1]
    return _upsert(
        {"_id": key, "batches": {"$nin": ids}},
        {"$inc": {"n": sum(c.n for _, c in shares)}, "$set": {"u": now},
         "$push": {"batches": {"$each": ids, "$slice": -GUARD_KEEP}},
         "$setOnInsert": {"t": first.minute, "host": first.host, "app": first.app, "level": first.level}})


def _host_update(key: str, shares: Sequence[tuple[str, HostCount]]) -> dict[str, Any]:
    """The host's counter update, as a pipeline: `$inc`, `$min`, `$max` and `$push` spelled as
    expressions, so the name lists can be capped in the same write. Values from shippers go in
    `$literal`, or a name starting with `$` would read as a field path."""
    counts = [h for _, h in shares]
    ids = [message_id for message_id, _ in shares]
    fields: dict[str, Any] = {
        "records": {"$add": [{"$ifNull": ["$records", 0]}, sum(h.records for h in counts)]},
        "errors": {"$add": [{"$ifNull": ["$errors", 0]}, sum(h.errors for h in counts)]},
        "first_seen": {"$min": ["$first_seen", min(h.first_seen for h in counts if h.first_seen is not None)]},
        "last_seen": {"$max": ["$last_seen", max(h.last_seen for h in counts if h.last_seen is not None)]},
        "apps": _capped_union("$apps", set().union(*(h.apps for h in counts))),
        "sources": _capped_union("$sources", set().union(*(h.sources for h in counts))),
        "batches": {"$slice": [{"$concatArrays": [{"$ifNull": ["$batches", []]}, {"$literal": ids}]},
                               -HOST_GUARD_KEEP]}}
    errors = [h.last_error for h in counts if h.last_error is not None]
    if errors:
        fields["last_error"] = {"$max": ["$last_error", max(errors)]}
    return _upsert({"_id": key, "batches": {"$nin": ids}}, [{"$set": fields}])


def _capped_union(field: str, names: set[str]) -> dict[str, Any]:
    """`field` (a list) with `names` added as to a set, keeping at most HOST_LIST_KEEP: a full
    list stays as it is (and one written longer before the cap is cut to it)."""
    listed = sorted(name for name in names if len(name) <= HOST_NAME_MAX)[:HOST_LIST_KEEP]
    current = {"$ifNull": [field, []]}
    added = {"$concatArrays": [current, {"$setDifference": [{"$literal": listed}, current]}]}
    return {"$slice": [{"$cond": [{"$gte": [{"$size": current}, HOST_LIST_KEEP]}, current, added]},
                       HOST_LIST_KEEP]}


def _upsert(query: dict[str, Any], update: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """One statement of an `update` command."""
    return {"q": query, "u": update, "upsert": True}


def _apply_guarded(collection: Collection[dict[str, Any]], ops: list[_Guarded]) -> None:
    """Apply each message's share of each key exactly once.

    First one upsert per key for all its messages: the common case, and what keeps a
    batch's cost independent of how many messages it holds. A key where that hits a
    duplicate (one of the messages was counted already, or another consumer was creating
    the key) goes again message by message, telling "already counted" from a race."""
    if not ops:
        return
    failed = _upsert_duplicates(collection, [op.update() for op in ops])
    ops = [single for i in failed for single in ops[i].per_message()]
    for _ in range(GUARD_ATTEMPTS):
        if not ops:
            return
        failed = _upsert_duplicates(collection, [op.update() for op in ops])
        ops = _not_counted(collection, [ops[i] for i in failed])
    if ops:
        raise StoreUnavailable(f"{collection.name}: keys still contended after {GUARD_ATTEMPTS} attempts")


def _upsert_duplicates(collection: Collection[dict[str, Any]], updates: list[dict[str, Any]]) -> list[int]:
    """Run the upserts in one unordered `update` command; the indexes of those that failed with
    a duplicate key."""
    errors = write_command(collection, "update", "updates", updates)
    others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
    if others:
        raise StoreUnavailable(f"{collection.name} update failed: code {others[0].get('code')}: "
                               f"{others[0].get('errmsg')}")
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
