"""Hourly tables folded out of the minute rollups, for histograms over more than 2 h and
the hosts' calendars; cached, and filled newest-first within a request's budget (the
answer says `complete: false` until every hour is filled). A run of hours that holds
no rollup is followed by one query for the newest rollup below it: the hours between
are empty tables, so a year without records costs two queries, not 1,460.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from webui.queries.budget import Budget
from webui.queries.rollups import ROLLUP_FIELDS
from webui.queries.times import HOUR, floor_to, utc

if TYPE_CHECKING:
    from pymongo.collection import Collection


class HourCache:
    """Hourly tables folded from the minute rollups: {(host, app, level): [n per quarter hour]}.

    Only settled hours (ended `settle` ago) are kept, for `ttl` seconds, so late
    records still show up; at most `max_hours` tables are held.
    """

    def __init__(self, rollups: Collection[dict[str, Any]], clock: Callable[[], float], ttl: float = 600.0,
                 settle: timedelta = timedelta(minutes=15), max_hours: int = 24 * 92):
        self.rollups, self.clock, self.ttl, self.settle, self.max_hours = rollups, clock, ttl, settle, max_hours
        self._tables: dict[datetime, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def _cached(self, hour: datetime) -> dict | None:
        with self._lock:
            hit = self._tables.get(hour)
        if hit and self.clock() - hit[0] < self.ttl:
            return hit[1]
        return None

    def tables(self, hours: list[datetime], budget: Budget) -> dict[datetime, dict | None]:
        """A table per hour (None where the budget ran out), filling the newest hours first."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        out: dict[datetime, dict | None] = {h: self._cached(h) for h in hours}
        missing = sorted((h for h, t in out.items() if t is None), reverse=True)
        while missing and budget.left > 0:
            run = [missing.pop(0)]
            while missing and missing[0] == run[-1] - HOUR and len(run) < 6:
                run.append(missing.pop(0))
            start, end = run[-1], run[0] + HOUR
            fresh: dict[datetime, dict] = {h: {} for h in run}
            found = False
            for r in self.rollups.find({"t": {"$gte": start, "$lt": end}}, ROLLUP_FIELDS):
                t = utc(r["t"])
                hour = floor_to(t, HOUR)
                slots = fresh[hour].setdefault((r.get("host"), r.get("app"), r.get("level")), [0, 0, 0, 0])
                slots[(t.minute // 15)] += r.get("n", 0)
                budget.spent += 1
                found = True
            if not found and missing:
                below = self._newest_hour_below(missing[-1], start)
                while missing and missing[0] > below:
                    fresh[missing.pop(0)] = {}
            stamp = self.clock()
            with self._lock:
                for hour, table in fresh.items():
                    if hour + HOUR <= now - self.settle:
                        self._tables[hour] = (stamp, table)
                excess = len(self._tables) - self.max_hours
                if excess > 0:  # oldest first; sorted once, as a year's window brings thousands at a time
                    for hour in sorted(self._tables)[:excess]:
                        del self._tables[hour]
            out.update(fresh)
        return out

    def _newest_hour_below(self, lo: datetime, start: datetime) -> datetime:
        """The hour of the newest rollup in [lo, start), or an hour before `lo` when there is none."""
        newest = self.rollups.find_one({"t": {"$gte": lo, "$lt": start}}, {"_id": 0, "t": 1},
                                             sort=[("t", -1)])
        return lo - HOUR if newest is None else floor_to(utc(newest["t"]), HOUR)
