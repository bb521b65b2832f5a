"""The most frequent values of one field over a search's result (the field sidebar's "top values").

The result is the same as a search's: the window, the filters and `q`, all through
`filter_match`. Like the histogram, the minute rollups first say how many candidates
the window holds: when the cheapest index yields them within the request's scan
budget, the whole window is counted (`complete: true`); otherwise only the newest
slice the budget covers is, and the answer says `complete: false`. One aggregation
counts the slice: its leading `$match` is the index's shape, candidates are capped at
what the budget has left (so a rollup estimate that was too low cannot make it
expensive), the other filters follow, and the values are grouped and ranked there.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from webui.queries.budget import Budget
from webui.queries.filters import Filters
from webui.queries.logs import filter_match
from webui.queries.rollups import SliceWalker

if TYPE_CHECKING:
    from webui.queries.handle import ReadHandle


def top_values(db: ReadHandle, flt: Filters, path: str, limit: int, budget: Budget) -> dict[str, Any]:
    """The `limit` most frequent values of the stored field `path` (dotted) among the records matching
    `flt`, most frequent first (ties by value); `scanned` is how many matching records were counted."""
    walker = SliceWalker(db, flt, flt.since, flt.until, budget)
    a, counts = walker.plan(flt.until, math.inf)
    if walker.blind:
        # No rollups in the window to guide a slice: count the window, as far as the budget goes.
        a, dim = flt.since, next((d for d in ("host", "app") if getattr(flt, d) is not None), "ts")
    else:
        # One index range per read: leads that are several ranges (a host wildcard's hosts, several
        # levels) would each need the whole grouping, so the next cheapest single range leads instead.
        costs = {d: c for d, c in counts.costs(flt).items()
                 if d in ("ts", "host", "app") or (d == "level" and len(flt.levels) == 1)}
        dim = min(costs, key=costs.__getitem__)
    cap = budget.left
    if cap <= 0:
        return {"values": [], "scanned": 0, "complete": False}
    examined, matched, ranked = _count(db, flt, path, dim, a, cap, limit)
    budget.spent += examined
    values = [{"value": row["_id"], "count": row["n"]} for row in ranked if row["_id"] is not None][:limit]
    return {"values": values, "scanned": matched, "complete": a <= flt.since and examined < cap}


def _count(db: ReadHandle, flt: Filters, path: str, dim: str, a: datetime, cap: int,
           limit: int) -> tuple[int, int, list[dict[str, Any]]]:
    lead: dict[str, Any] = {"ts": {"$gte": a, "$lt": flt.until}}
    if dim == "level":
        lead["level"] = flt.levels[0]  # `costs` offers it for one real level only
    elif dim != "ts":
        lead[dim] = getattr(flt, dim)
    residual = filter_match(flt, lead=dim)
    rest: list[dict[str, Any]] = [{"$match": residual}] if residual else []
    pipeline: list[dict[str, Any]] = [
        {"$match": lead},
        {"$limit": cap},
        {"$facet": {
            "examined": [{"$count": "n"}],
            "matched": [*rest, {"$count": "n"}],
            # One more than asked: "no value" (null, or the field absent) may be among them.
            "top": [*rest, {"$group": {"_id": f"${path}", "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id": 1}},
                    {"$limit": limit + 1}],
        }},
    ]
    out = next(iter(db.logs.aggregate(pipeline)), None) or {}
    return _n(out.get("examined")), _n(out.get("matched")), list(out.get("top") or [])


def _n(rows: list[dict[str, Any]] | None) -> int:
    return int(rows[0]["n"]) if rows else 0
