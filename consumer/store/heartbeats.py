"""The `heartbeats` collection: the newest heartbeat per (host, file identity) (common.record.heartbeats).

`{_id: "<host>\\0<file>", host, file, source, names, size, confirmed, inode, fingerprint, mtime,
state, at, sizes: [[epoch s, size], ...] (the last SAMPLES), truncated_size?}`. Each is an upsert
that only matches an older `at`: a heartbeat older than (or the same as) the stored one finds no
document, its upsert hits the `_id` (11000) and changes nothing. So a redelivered or late
heartbeat never replaces a newer one. `truncated_size` is the most that was known of a content
that was truncated: what of it was never read is a gap (webui.queries.coverage).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.collection import Collection

from common.errors import StoreUnavailable
from consumer.store.writes import DUPLICATE_KEY, write_command

SAMPLES = 120  # ten minutes at the default 5 s: enough to date the oldest byte of a usual lag


def apply_heartbeats(collection: Collection[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    newest: dict[str, dict[str, Any]] = {}
    for doc in docs:
        seen = newest.get(doc["_id"])
        if seen is None or doc["at"] > seen["at"]:
            newest[doc["_id"]] = doc
    if not newest:
        return
    updates = []
    for key, doc in newest.items():
        fields = {k: v for k, v in doc.items() if k != "_id"}
        update: dict[str, Any] = {"$set": fields, "$push": {"sizes": {
            "$each": [[int(_epoch(doc["at"])), doc["size"]]],
            "$slice": -SAMPLES}}}
        if doc["state"] == "truncated":
            update["$max"] = {"truncated_size": doc["size"]}
        updates.append({"q": {"_id": key, "at": {"$lt": doc["at"]}}, "u": update, "upsert": True})
    errors = write_command(collection, "update", "updates", updates)
    others = [e for e in errors if e.get("code") != DUPLICATE_KEY]  # duplicates: a newer one is stored
    if others:
        raise StoreUnavailable(f"heartbeats update failed: code {others[0].get('code')}: {others[0].get('errmsg')}")


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
