"""A page of records, newest first, reading only the time slice that should hold it.

`newest_page` walks the minute rollups back from the newest end of the window
until they promise the page's records, then queries just that slice; the
leading `$match` is exactly the cheapest index's shape (`{dim: value, ts: range}`)
and the other filters follow in a second `$match` (SecantusDB plans only the
leading one; MongoDB merges both). Text and source filters are not in the
rollups: the slice widens 4x per round until the page is full or `scan_budget`
candidates were examined; then the page ends early with a cursor that continues
where the scan stopped. Without any rollups in the window (a consumer that does
not write them), the slices grow blindly, 1, 4, 16 ... minutes, from the newest
record in the window (one indexed query finds it, or finds the window empty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from webui.queries.budget import Budget
from webui.queries.filters import Cursor, Filters
from webui.queries.logs import RECORD_FIELDS, filter_match, to_record
from webui.queries.rollups import SliceWalker
from webui.queries.times import MINUTE, utc

if TYPE_CHECKING:
    from webui.queries.handle import ReadHandle


FIELD_LEAD_ABOVE = 2000  # candidates: below that, a rollup-known index is cheap enough whatever the field


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_cursor: Cursor | None
    searched_to: datetime | None = None  # set when the scan budget cut the page short
    scanned: int = 0


def newest_page(db: ReadHandle, flt: Filters, limit: int, cursor: Cursor | None, budget: Budget) -> Page:
    lo, hi = flt.since, flt.until
    if cursor is not None:
        hi = min(hi, cursor.ts + timedelta(milliseconds=1) if cursor.id else cursor.ts)
    walker = SliceWalker(db, flt, lo, hi, budget)
    # The newest minutes may not be rolled up yet: never trust "no records" there.
    unrolled = db.now() - 2 * MINUTE
    blind_dim = next((d for d in ("host", "app") if getattr(flt, d) is not None), "ts")
    out: list[dict[str, Any]] = []
    b, rounds, blind_step = hi, 0, MINUTE
    while len(out) < limit and b > lo:
        need = limit - len(out)
        target = need * 4 ** rounds if flt.text_only_in_logs else need
        a, counts = walker.plan(b, target)
        if walker.blind:
            if blind_step == MINUTE:
                newest = _newest_time(db, flt, blind_dim, lo, b)
                if newest is None:
                    break
                b = newest
            a = max(lo, b - blind_step)
            blind_step *= 4
            docs = _slice(db, flt, a, b, blind_dim, need, cursor)
            budget.spent += len(docs)
        elif counts.match > 0:
            costs = counts.costs(flt)
            dim = min(costs, key=costs.__getitem__)
            if costs[dim] > FIELD_LEAD_ABOVE and flt.field_lead() is not None:
                dim = "field"  # the budget still counts what the cheapest rollup-known index would yield
            docs = _slice(db, flt, a, b, dim, need, cursor, counts.matching_hosts(flt))
            budget.spent += math.ceil(min(costs.values()))
        elif b > unrolled:
            a = max(a, unrolled)
            docs = _slice(db, flt, a, b, blind_dim, need, cursor)
            budget.spent += len(docs)
        else:
            docs = []
        out.extend(docs)
        b, rounds = a, rounds + 1
        if len(out) < limit and b > lo and budget.left <= 0:
            return Page(out, Cursor(b), searched_to=b, scanned=budget.spent)
    if len(out) >= limit:
        last = out[-1]
        return Page(out, Cursor(last["ts"], last["id"]), scanned=budget.spent)
    return Page(out, None, scanned=budget.spent)


def _newest_time(db: ReadHandle, flt: Filters, dim: str, lo: datetime, b: datetime) -> datetime | None:
    """Just past the newest record in [lo, b) on `dim`'s index, None when there is none."""
    lead: dict[str, Any] = {"ts": {"$gte": lo, "$lt": b}}
    if dim != "ts":
        lead[dim] = getattr(flt, dim)
    newest = db.logs.find_one(lead, {"_id": 0, "ts": 1}, sort=[("ts", -1)])
    return None if newest is None else min(b, utc(newest["ts"]) + timedelta(milliseconds=1))


def _slice(db: ReadHandle, flt: Filters, a: datetime, b: datetime, dim: str, limit: int,
           cursor: Cursor | None, hosts: list[str] | None = None) -> list[dict[str, Any]]:
    ts = {"$gte": a, "$lt": b}
    residual = filter_match(flt, lead=dim)
    if cursor is not None and cursor.id and a <= cursor.ts < b:
        residual["$or"] = [{"ts": {"$lt": cursor.ts}}, {"_id": {"$lt": cursor.id}}]
    if dim == "ts":
        leads = [{"ts": ts}]
    elif dim == "level":
        leads = [{"level": lv, "ts": ts} for lv in flt.levels]
    elif dim == "hosts":  # a host wildcard or regex: each host it matches on the (host, ts) index
        leads = [{"host": h, "ts": ts} for h in hosts or ()]
    elif dim == "field":  # an indexed parsed field (mongo.field_indexes, fields.$**): its (field, ts) keys
        _, conditions = flt.field_lead() or ("", ())
        leads = [{**c, "ts": ts} for c in conditions]
    else:
        leads = [{dim: getattr(flt, dim), "ts": ts}]
    plan = flt.plan
    if plan is not None and plan.text_search is not None:  # a server with a text index (`Capabilities`)
        for lead in leads:
            lead["$text"] = {"$search": plan.text_search}
    docs: list[dict[str, Any]] = []
    for lead in leads:
        pipeline: list[dict[str, Any]] = [{"$match": lead}]
        if residual:
            pipeline.append({"$match": residual})
        pipeline += [{"$sort": {"ts": -1, "_id": -1}}, {"$limit": limit}, {"$project": RECORD_FIELDS}]
        docs.extend(db.logs.aggregate(pipeline))
    records = [to_record(d) for d in docs]
    if len(leads) > 1:
        records.sort(key=lambda r: (r["ts"], r["id"]), reverse=True)
    return records[:limit]
