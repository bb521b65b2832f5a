"""Arrival order: every stored record gets `arrival`, its position in the order records were
stored, so the live tail (`GET /api/tail`) can walk "everything stored after my cursor" and
never skip a record, whatever its event time, however many consumers write at once.

How a batch gets its positions (`ArrivalOrder.stamped`):

1. Reserve a block of positions, one per record, and register the block as *open* (in flight)
   in ONE atomic update of one document, `arrival` `{_id: "logs", n: <last reserved>,
   open: {"<start>": <lease end, epoch s>}}`: a compare-and-swap on `n` (read `n`, then
   `update {_id, n: n0} -> {n: n0 + k, open.<n0+1>: lease}`, again on a miss). Positions are
   dense: a batch of k records takes exactly k, so a range of positions holds at most as
   many records as its width (the tail's scan budget rests on that).
2. Stamp the records `arrival = start + i` and insert them (unordered, as always). The insert
   is sent only while the lease holds (a lease too close to its end is given back and a fresh
   block taken), and a thread renews the lease while the insert runs, so a slow database
   holds the tail back rather than letting it pass a batch still arriving.
3. Close the block (`$unset open.<start>`). Only then can a reader pass it. A failed insert
   leaves its block open until the lease ends, unrenewed (the server may still be finishing
   it); the retry takes a new block.

The readable frontier (`common.arrival.frontier`) is read from that one document, so it is a consistent
snapshot: below the lowest open block that has not expired, else `n`. A record is visible
at a position <= frontier only once its batch's insert has returned, so a reader that has
passed position p has seen every record that will ever hold a position <= p: a slow
consumer's late commit holds the frontier back instead of falling behind a cursor.

A consumer that dies inside step 2 leaves its block open; the lease ends (`webui` readers
compare it with their own clock, so clocks are assumed within a few seconds, as NTP keeps
them, against a lease of a minute) and the frontier moves on. What that consumer stored was
stored before the lease ended; its message is redelivered, the records already stored are
duplicates that keep their first position (insert-once: a duplicate key never rewrites a
document) and the others get positions in the redelivering consumer's new block. So no
record ever has two positions, and none is ever placed behind the frontier.

Why not the alternatives:

- `received_at` (or the consumer's clock) plus a settle delay: a consumer paused longer
  than the delay (a GC pause, a database failover, a stopped VM) commits behind a reader
  that already passed, silently; and every reader waits the delay even when nothing is late.
- `_id` or an ObjectId order: ids are deterministic hashes here (redelivery must dedupe),
  and an ObjectId is drawn before the insert, so it has the same late-commit hole.
- Change streams / the oplog: exact, but a real MongoDB replica set only; SecantusDB, which
  runs here and in CI, has neither. The counter document is standard MongoDB on both.
- One global sequence per record ($inc per record): a round trip per record. Per batch it
  costs three small commands for thousands of records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymongo
from pymongo.collection import Collection

from common.arrival import FIELD, STATE_ID
from common.errors import StoreUnavailable

log = logging.getLogger(__name__)

MARGIN = 2.0  # seconds of lease kept back for the insert's own round trip
CAS_ATTEMPTS = 200


class ArrivalOrder:
    """Reserves, stamps and closes blocks of arrival positions for one consumer (module docstring).

    `pause` runs between reserving a block and inserting it: a seam for tests that freeze a
    consumer exactly there."""

    def __init__(self, state: Collection[dict[str, Any]], lease: float, clock: Callable[[], float] = time.time):
        self.state, self.lease, self.clock = state, lease, clock
        self.pause: Callable[[int, int], None] = lambda start, count: None
        self._n: int | None = None  # the last `n` seen: usually right for a lone consumer, saves a read

    def init(self) -> None:
        """The state document, created once (a race between consumers creating it is harmless)."""
        try:
            self.state.update_one({"_id": STATE_ID}, {"$setOnInsert": {"n": 0, "open": {}}}, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            pass

    @contextmanager
    def stamped(self, docs: list[dict[str, Any]]) -> Iterator[None]:
        """Stamp `docs` with a fresh block of positions; the body inserts them. The block is
        closed once the body returns; its lease is renewed while the body runs. If the body
        fails, the block stays open until its lease ends: an insert whose connection broke may
        still be finishing on the server, and a reader must not pass records still arriving.
        The retry takes a new block; records this attempt stored keep their positions."""
        start, until = self._reserve(len(docs))
        self.pause(start, len(docs))
        if until - self.clock() < MARGIN:  # frozen or slow since: this lease may be over for readers
            self._close(start)
            start, until = self._reserve(len(docs))
        for i, doc in enumerate(docs):
            doc[FIELD] = start + i
        with self._renewed(start):
            yield
        self._close(start)

    @contextmanager
    def _renewed(self, start: int) -> Iterator[None]:
        """Keep the block's lease from ending while this worker inserts (however slow the database):
        a thread pushes it on every third of a lease. A lease that ended already (the worker was
        frozen) is not revived: readers may have passed it."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease / 3):
                try:
                    self.state.update_one({"_id": STATE_ID, f"open.{start}": {"$gte": self.clock()}},
                                          {"$set": {f"open.{start}": self.clock() + self.lease}})
                except pymongo.errors.PyMongoError as exc:
                    log.warning("could not renew arrival block %d: %s", start, exc)

        renewer = threading.Thread(target=renew, name=f"arrival-lease-{start}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()

    def _reserve(self, count: int) -> tuple[int, float]:
        """A block of `count` positions, registered open with a lease: (its first position, lease end)."""
        for _ in range(CAS_ATTEMPTS):
            if self._n is None:
                current = self.state.find_one({"_id": STATE_ID}) or {"n": 0, "open": {}}
                self._n = int(current["n"])
                expired = [key for key, end in (current.get("open") or {}).items() if end < self.clock()]
            else:
                expired = []
            n0 = self._n
            until = self.clock() + self.lease
            update: dict[str, Any] = {"$set": {"n": n0 + count, f"open.{n0 + 1}": until}}
            if expired:  # blocks of consumers that died: tidy them away while we are here
                update["$unset"] = {f"open.{key}": "" for key in expired}
            try:
                # upsert: the first block ever creates the document (a second creator collides on _id)
                done = self.state.find_one_and_update({"_id": STATE_ID, "n": n0}, update, projection={"_id": 1},
                                                      upsert=True, return_document=pymongo.ReturnDocument.AFTER)
            except pymongo.errors.DuplicateKeyError:
                done = None
            if done is not None:
                self._n = n0 + count
                return n0 + 1, until
            self._n = None  # another consumer took the next block: read again
        raise StoreUnavailable(f"could not reserve arrival positions in {CAS_ATTEMPTS} attempts")

    def _close(self, start: int) -> None:
        try:
            self.state.update_one({"_id": STATE_ID}, {"$unset": {f"open.{start}": ""}})
        except pymongo.errors.PyMongoError as exc:
            # The lease ends it for the readers anyway; the insert's own outcome is what counts.
            log.warning("could not close arrival block %d (readers pass it when its lease ends): %s", start, exc)

