"""Isolated attempts at suspect messages, in MongoDB so that they outlive the consumer.

A suspect (a message that came back from a consumer that died holding it) is
processed alone, and an attempt is recorded just before. The record is removed
once the message has an outcome (stored, or dead-lettered for a reason of its
own). So a record still there when the message comes back counts one death of
a consumer while it held that message and no other: the evidence that the
message itself kills consumers, which a broker's delivery count cannot give.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

from consumer.store.indexes import ensure_ttl

# A record outlives its message only if a consumer dies between an outcome and the removal;
# the TTL index sweeps those.
ATTEMPTS_TTL = 7 * 86400


def ensure_attempts_ttl(attempts: Collection[dict[str, Any]]) -> None:
    ensure_ttl(attempts, "last", ATTEMPTS_TTL, plain_otherwise=False)


def begin_attempt(attempts: Collection[dict[str, Any]], message_id: str) -> int:
    """Record an attempt at `message_id`; how many earlier ones never ended (the consumer died)."""
    now = datetime.now(UTC)
    before = attempts.find_one_and_update(
        {"_id": message_id}, {"$inc": {"n": 1}, "$set": {"last": now}, "$setOnInsert": {"first": now}},
        projection={"n": 1}, upsert=True, return_document=ReturnDocument.BEFORE)
    return int(before["n"]) if before else 0


def end_attempt(attempts: Collection[dict[str, Any]], message_id: str) -> None:
    attempts.delete_one({"_id": message_id})
