"""The minute rollups (records per minute, host, app, level) as a guide to where records are.

`SliceWalker` reads them back from the newest end of a window, in growing steps,
and plans the slice that should hold a page; `Counts` also tells which index
(all records, one host, one app or one level) yields the fewest candidates there.
A step that finds nothing is followed by one query for the newest rollup below it,
so an empty stretch costs two queries however long it is (a year of 6 h steps was
1,460), and `plan` jumps over minutes known to be empty instead of visiting each.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from webui.queries.budget import Budget
from webui.queries.filters import NO_LEVEL, Filters
from webui.queries.times import HOUR, MINUTE, floor_to, utc

if TYPE_CHECKING:
    from webui.queries.handle import ReadHandle

MAX_HOST_LEADS = 64  # a host wildcard matching more hosts leads with another index
ROLLUP_FIELDS = {"_id": 0, "t": 1, "host": 1, "app": 1, "level": 1, "n": 1}


def matches_rollup(flt: Filters, host: str, app: str, level: str | None) -> bool:
    if flt.host is not None and host != flt.host:
        return False
    if flt.app is not None and app != flt.app:
        return False
    if flt.levels and (level or NO_LEVEL) not in flt.levels:
        return False
    plan = flt.plan
    return plan is None or not plan.rollup_exact or plan.rollup_test(host, app, level)


@dataclass
class Counts:
    """Records in some minutes: all, matching the rollup-visible filters, per index dimension.

    Fractions of a minute count pro rata (records assumed evenly spread), hence floats.
    """

    total: float = 0
    match: float = 0
    host: float = 0
    app: float = 0
    levels: Counter = field(default_factory=Counter)
    hosts: Counter = field(default_factory=Counter)  # per host name: a host wildcard's hosts are read one by one

    def add(self, other: Counts, share: float = 1.0) -> None:
        self.total += other.total * share
        self.match += other.match * share
        self.host += other.host * share
        self.app += other.app * share
        for level, n in other.levels.items():
            self.levels[level] += n * share
        for host, n in other.hosts.items():
            self.hosts[host] += n * share

    def matching_hosts(self, flt: Filters) -> list[str] | None:
        """The hosts of these minutes that `q`'s top-level host clauses let through (None: q has none)."""
        plan = flt.plan
        if flt.host is not None or plan is None or not plan.host_clauses:
            return None
        return sorted(h for h, n in self.hosts.items() if n > 0 and plan.host_test(h))

    def costs(self, flt: Filters) -> dict[str, int]:
        """Candidates each usable index would yield for these minutes."""
        costs = {"ts": self.total}
        if flt.host is not None:
            costs["host"] = self.host
        if flt.app is not None:
            costs["app"] = self.app
        if flt.levels and NO_LEVEL not in flt.levels:
            costs["level"] = sum(self.levels[lv] for lv in flt.levels)
        hosts = self.matching_hosts(flt)
        if hosts is not None and len(hosts) <= MAX_HOST_LEADS:
            costs["hosts"] = sum(self.hosts[h] for h in hosts)
        return costs


class SliceWalker:
    """Walks the minute rollups back from the window's newest end, fetching them in growing steps."""

    def __init__(self, db: ReadHandle, flt: Filters, lo: datetime, hi: datetime, budget: Budget):
        self.db, self.flt, self.lo, self.budget = db, flt, lo, budget
        self.now = db.now()
        self.lo_minute = floor_to(lo, MINUTE)
        self.fetched_lo = floor_to(hi - timedelta(microseconds=1), MINUTE) + MINUTE
        self.step = 5 * MINUTE
        self.minutes: dict[datetime, Counts] = {}
        self.known: list[datetime] = []  # the keys of `minutes`, ascending
        self.docs_seen = 0

    def _fetch_more(self) -> bool:
        if self.fetched_lo <= self.lo_minute or self.budget.left <= 0:
            return False
        start = max(self.lo_minute, self.fetched_lo - self.step)
        seen = self.docs_seen
        for r in self.db.rollups.find({"t": {"$gte": start, "$lt": self.fetched_lo}}, ROLLUP_FIELDS):
            minute = utc(r["t"])
            counts = self.minutes.get(minute)
            if counts is None:
                counts = self.minutes[minute] = Counts()
                bisect.insort(self.known, minute)
            n, host, app, level = r.get("n", 0), r.get("host"), r.get("app"), r.get("level")
            counts.total += n
            counts.match += n if matches_rollup(self.flt, host, app, level) else 0
            counts.host += n if host == self.flt.host else 0
            counts.app += n if app == self.flt.app else 0
            counts.levels[level or NO_LEVEL] += n
            if host is not None:
                counts.hosts[host] += n
            self.docs_seen += 1
            self.budget.spent += 1
        if self.docs_seen == seen and start > self.lo_minute:
            start = self._newest_below(start)
        self.fetched_lo = start
        self.step = min(self.step * 2, 6 * HOUR)
        return True

    def _newest_below(self, start: datetime) -> datetime:
        """Where to resume after an empty step: just above the newest rollup older than `start`."""
        newest = self.db.rollups.find_one({"t": {"$gte": self.lo_minute, "$lt": start}}, {"_id": 0, "t": 1},
                                             sort=[("t", -1)])
        return self.lo_minute if newest is None else floor_to(utc(newest["t"]), MINUTE) + MINUTE

    @property
    def blind(self) -> bool:
        """No rollups anywhere in the window: they cannot guide the slices."""
        return self.docs_seen == 0 and self.fetched_lo <= self.lo_minute

    def plan(self, b: datetime, target: float) -> tuple[datetime, Counts]:
        """The slice [a, b) whose rollups promise `target` matching records, and its counts.

        The oldest minute is cut to the share that should hold the rest (plus a margin),
        so a busy minute (thousands of records) is not read whole for a 100-line page.
        """
        acc, a = Counts(), b
        minute = floor_to(b - timedelta(microseconds=1), MINUTE)
        while minute >= self.lo_minute:
            if minute < self.fetched_lo:
                if not self._fetch_more():
                    break
                continue
            # The current minute's rollup holds only what arrived so far: spread it over that time.
            span = min(MINUTE, max(timedelta(seconds=1), self.now - minute))
            seg_start, seg_end = max(minute, self.lo), min(minute + span, b)
            share = max(timedelta(0), seg_end - seg_start) / span
            counts = self.minutes.get(minute)
            if counts is None:
                # No rollup in this fetched minute: go straight to the next one that has some.
                i = bisect.bisect_left(self.known, minute)
                below = self.known[i - 1] if i else self.lo_minute - MINUTE
                minute = max(below, self.fetched_lo - MINUTE)
                a = max(minute + MINUTE, self.lo)
                continue
            if counts.match > 0 and acc.match + counts.match * share >= target:
                part = min(share, (target - acc.match) / counts.match * 1.25)
                acc.add(counts, part)
                return max(seg_start, min(b, minute + span) - max(span * part, timedelta(milliseconds=1))), acc
            acc.add(counts, share)
            a = seg_start
            minute -= MINUTE
            if min(acc.costs(self.flt).values()) >= self.budget.left:
                break
        return a, acc
