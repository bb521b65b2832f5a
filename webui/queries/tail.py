"""The live tail: records in arrival order after a position, oldest first, never skipping one.

Positions are the consumer's `arrival` stamps (`common.arrival`; the design is argued in
`consumer.store.arrival`): dense, so a range of positions holds at most as many records as
its width. A read never goes past the frontier, the highest position below every batch still
being inserted; so a position the tail has passed can never receive a record later.

Cost: a query costs about the records its index range yields (the `arrival` index; sort and
limit do not stop a scan early on SecantusDB). So each query asks for a range no wider than
it may examine: without a filter exactly the records still wanted, with one a range that
grows 4x per round up to what the scan budget has left. A selective filter over a long
backlog returns what it found and a position where the scan stopped, never scanning on.
The time window of `Filters` is not applied: the tail follows storing order, whatever the
records' event times (hours old after a backlog, or skewed clocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.arrival import FIELD, frontier
from webui.queries.budget import Budget
from webui.queries.filters import Filters
from webui.queries.logs import RECORD_FIELDS, filter_match, to_record

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from webui.queries.handle import ReadHandle


class PositionAhead(Exception):
    """A position beyond the newest one ever handed out: not a cursor of this database."""


@dataclass
class TailPage:
    records: list[dict[str, Any]]
    position: int            # where the next page starts (exclusive)
    caught_up: bool          # the position is at the frontier: nothing more is readable yet


def _state(arrival: Collection[dict[str, Any]]) -> dict[str, Any] | None:
    return arrival.find_one({"_id": "logs"})


def end_position(db: ReadHandle, arrival: Collection[dict[str, Any]]) -> int:
    """Where a tail without a cursor starts: the frontier, so whatever is stored from now on shows."""
    return frontier(_state(arrival), db.clock())


def tail_page(db: ReadHandle, arrival: Collection[dict[str, Any]], flt: Filters, after: int, limit: int,
              budget: Budget) -> TailPage:
    """Up to `limit` records matching `flt` stored after position `after`, oldest first."""
    state = _state(arrival)
    if after > int((state or {}).get("n", 0)):
        raise PositionAhead(after)
    end = frontier(state, db.clock())
    residual = filter_match(flt)
    out: list[dict[str, Any]] = []
    pos, rounds = after, 0
    while pos < end and len(out) < limit and budget.left > 0:
        need = limit - len(out)
        width = need if not residual else min(budget.left, need * 4 ** rounds)
        hi = min(end, pos + max(1, width))
        pipeline: list[dict[str, Any]] = [{"$match": {FIELD: {"$gt": pos, "$lte": hi}}}]
        if residual:
            pipeline.append({"$match": residual})
        pipeline += [{"$sort": {FIELD: 1}}, {"$limit": need}, {"$project": {**RECORD_FIELDS, FIELD: 1}}]
        docs = list(db.logs.aggregate(pipeline))
        budget.spent += hi - pos
        out.extend(to_record(d) for d in docs)
        pos = int(docs[-1][FIELD]) if len(docs) == need else hi
        rounds += 1
    return TailPage(out, pos, caught_up=pos >= end)
