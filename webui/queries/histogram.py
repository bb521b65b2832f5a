"""Records per time bucket and level: from the minute rollups up to 2 h, from the hour
tables beyond; from `logs` itself when a text or source filter asks and the rollups
say it fits the budget, or when `q` constrains an indexed parsed field
(`Filters.field_lead`) whose index counts no more records than the budget.
A `q` on host, app and level alone is counted on the rollups (`matches_rollup`).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from webui.queries.budget import Budget
from webui.queries.filters import NO_LEVEL, Filters
from webui.queries.hour_tables import HourCache
from webui.queries.logs import filter_match
from webui.queries.rollups import ROLLUP_FIELDS, SliceWalker, matches_rollup
from webui.queries.times import MINUTE, QUARTER, floor_to, hour_starts, utc

if TYPE_CHECKING:
    from webui.queries.handle import ReadHandle

_BUCKETS = tuple(timedelta(seconds=s) for s in (60, 900, 3600, 3 * 3600, 6 * 3600, 86400))


def bucket_for(span: timedelta, max_buckets: int = 120) -> timedelta:
    """Minute buckets up to 2 h (from the minute rollups), then quarter hours and up (from `HourCache`)."""
    for bucket in _BUCKETS:
        if span / bucket <= max_buckets:
            return bucket
    return _BUCKETS[-1]


def level_histogram(db: ReadHandle, hours: HourCache, flt: Filters, bucket: timedelta,
                    budget: Budget) -> dict[str, Any]:
    start = floor_to(flt.since, bucket)
    starts = []
    t = start
    while t < flt.until:
        starts.append(t)
        t += bucket
    counts: dict[datetime, Counter | None] = {s: Counter() for s in starts}
    text_applied = False
    if flt.text_only_in_logs:
        estimate = _estimate(db, flt, budget)
        if estimate is not None and estimate <= budget.left:
            _count_logs(db, flt, bucket, counts)
            budget.spent += estimate
            text_applied = True
        elif (lead := flt.field_lead()) is not None:
            leads = [{**c, "ts": {"$gte": flt.since, "$lt": flt.until}} for c in lead[1]]
            # Counting on the field's index stops past the budget: a query matching more falls back
            # to the rollups' counts, labelled (text_filter_applied false), as for text.
            indexed = sum(db.logs.count_documents(c, limit=budget.left + 1) for c in leads)
            if indexed <= budget.left:
                _count_logs(db, flt, bucket, counts, leads)
                budget.spent += indexed
                text_applied = True
    if not text_applied:
        if bucket < QUARTER:
            _count_minute_rollups(db, flt, bucket, counts, budget)
        else:
            _count_hour_tables(hours, flt, bucket, counts, budget)
    buckets = [{"start": s, "count": None if c is None else sum(c.values()),
                "levels": None if c is None else dict(c)} for s, c in counts.items()]
    return {"buckets": buckets, "bucket_seconds": int(bucket.total_seconds()),
            "complete": all(b["count"] is not None for b in buckets),
            "text_filter_applied": text_applied or not flt.text_only_in_logs}


def _estimate(db: ReadHandle, flt: Filters, budget: Budget) -> int | None:
    """Records the rollup-visible filters match in the window, if the rollups can tell within budget."""
    walker = SliceWalker(db, flt, flt.since, flt.until, budget)
    a, counts = walker.plan(flt.until, float("inf"))
    if a > flt.since or walker.blind:
        return None
    return math.ceil(min(counts.costs(flt).values()))


def _count_logs(db: ReadHandle, flt: Filters, bucket: timedelta, counts: dict[datetime, Counter | None],
               leads: list[dict[str, Any]] | None = None) -> None:
    """Count the matching records per bucket and level, each lead (disjoint) on its own index."""
    match = filter_match(flt)
    seconds = int(bucket.total_seconds())
    for lead in leads or [{"ts": {"$gte": flt.since, "$lt": flt.until}}]:
        pipeline: list[dict[str, Any]] = [{"$match": lead}]
        if match:
            pipeline.append({"$match": match})
        pipeline.append({"$group": {"_id": {"t": {"$dateTrunc": {"date": "$ts", "unit": "second",
                                                                 "binSize": seconds}},
                                            "level": "$level"}, "n": {"$sum": 1}}})
        for row in db.logs.aggregate(pipeline):
            key = floor_to(utc(row["_id"]["t"]), bucket)
            if counts.get(key) is not None:
                counts[key][row["_id"].get("level") or NO_LEVEL] += row["n"]


def _count_minute_rollups(db: ReadHandle, flt: Filters, bucket: timedelta, counts: dict[datetime, Counter | None],
                          budget: Budget) -> None:
    for r in db.rollups.find({"t": {"$gte": floor_to(flt.since, MINUTE), "$lt": flt.until}}, ROLLUP_FIELDS):
        budget.spent += 1
        if matches_rollup(flt, r.get("host"), r.get("app"), r.get("level")):
            counts[floor_to(utc(r["t"]), bucket)][r.get("level") or NO_LEVEL] += r.get("n", 0)


def _count_hour_tables(hours: HourCache, flt: Filters, bucket: timedelta, counts: dict[datetime, Counter | None],
                       budget: Budget) -> None:
    """Counts per quarter hour from `HourCache`; a bucket with an hour the budget left unread is None."""
    tables = hours.tables(hour_starts(floor_to(flt.since, QUARTER), flt.until), budget)
    for hour, table in tables.items():
        for i in range(4):
            key = floor_to(hour + i * QUARTER, bucket)
            if key not in counts:
                continue
            if table is None:
                counts[key] = None
            elif counts[key] is not None:
                for (host, app, level), slots in table.items():
                    if slots[i] and matches_rollup(flt, host, app, level):
                        counts[key][level or NO_LEVEL] += slots[i]
