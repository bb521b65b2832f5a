"""One rule's value at one moment: what `states.step` is given.

* count: records matching the query in `[now - window, now)`. A query on host, app and level
  alone (`plan.from_rollups`) is counted from the minute rollups, exact per minute: the whole minutes of the
  window (the current one included, as far as it has arrived) from `rollups`, and the window's
  first, partial minute from `logs` (a count over at most one minute of one host/app/level).
  Any other query is counted in `logs` with the query language's `$match`
  (`webui.queries.logs.filter_match`), capped at `alerts.count_cap` (the value says `capped`).
* ratio: the count of `query` over the count of `of`, both as above; no `of` records: no value.
* silence: records matching the query/host/app in the last `for` (counted up to SILENCE_CAP);
  with a `file` glob, the per-file heartbeats (`heartbeats.at`) of matching files instead,
  falling back to records from matching files when no heartbeat was ever stored for them.
  Fires at 0.

The rollups of every due rule are fetched in one query per cycle (`MinuteTable`), so 100 count
rules cost one read of the minutes they span, not 100.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from common.config import AlertRule
from webui.alerts.plan import from_rollups, query_filters
from webui.queries.filters import NO_LEVEL, Filters
from webui.queries.logs import filter_match
from webui.queries.rollups import matches_rollup
from webui.queries.times import MINUTE, floor_to, utc

if TYPE_CHECKING:
    from webui.alerts.store import Sources

SILENCE_CAP = 100
TOP_LINES = 10


@dataclass(frozen=True)
class Result:
    value: float | None
    breached: bool
    capped: bool = False
    source: str = "logs"   # where the numbers came from: rollups | logs | heartbeats


class MinuteTable:
    """The rollups of [lo, hi), fetched once, summed per rule."""

    def __init__(self, rows: list[dict[str, Any]], lo: datetime):
        self.lo = lo
        self.minutes: dict[datetime, list[tuple[str, str, str | None, int]]] = defaultdict(list)
        for r in rows:
            self.minutes[utc(r["t"])].append((r.get("host"), r.get("app"), r.get("level"), r.get("n", 0)))

    @classmethod
    def load(cls, src: Sources, lo: datetime, hi: datetime) -> MinuteTable:
        lo = floor_to(lo, MINUTE)
        rows = list(src.rollups.find({"t": {"$gte": lo, "$lte": hi}}, {"_id": 0, "t": 1, "host": 1, "app": 1,
                                                                      "level": 1, "n": 1}))
        return cls(rows, lo)

    def count(self, query: str | None, lo: datetime, hi: datetime) -> int:
        """Records of the minutes starting in [lo, hi] that match `query` (one the rollups answer)."""
        flt = Filters(since=lo, until=hi, q=query or None)
        return sum(n for minute, rows in self.minutes.items() if lo <= minute <= hi
                   for host, app, level, n in rows if matches_rollup(flt, host, app, level))


def ceil_minute(dt: datetime) -> datetime:
    floor = floor_to(dt, MINUTE)
    return floor if floor == dt else floor + MINUTE


def _pipeline(query: str | None, since: datetime, until: datetime,
              extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The `$match` stages for `query` (and `extra` equalities/regexes) in [since, until): first the
    shape of the cheapest index, `{dim: value, ts: range}` (SecantusDB plans only the leading
    `$match`; MongoDB merges both), then the rest (`filter_match` leaving out that dimension)."""
    flt = query_filters(query, since, until)
    extra = dict(extra or {})
    for dim in ("host", "app"):
        if getattr(flt, dim) is None and isinstance(extra.get(dim), str):
            flt = replace(flt, **{dim: extra.pop(dim)})
    lead: dict[str, Any] = {"ts": {"$gte": since, "$lt": until}}
    dim = next((d for d in ("host", "app") if getattr(flt, d) is not None), None)
    if dim is None and len(flt.levels) == 1 and flt.levels[0] != NO_LEVEL:
        dim, lead["level"] = "level", flt.levels[0]
    elif dim is not None:
        lead[dim] = getattr(flt, dim)
    stages = [{"$match": lead}]
    rest = filter_match(flt, lead=dim)
    if extra:
        rest = {"$and": [rest, extra]} if rest else extra
    if rest:
        stages.append({"$match": rest})
    return stages


def _count_logs(src: Sources, stages: list[dict[str, Any]], cap: int | None) -> int:
    limit = [{"$limit": cap}] if cap else []
    found = list(src.logs.aggregate([*stages, *limit, {"$count": "n"}]))
    return int(found[0]["n"]) if found else 0


def count(src: Sources, table: MinuteTable | None, query: str, since: datetime, now: datetime,
          cap: int) -> tuple[int, bool, str]:
    """(records, capped, source) matching `query` in [since, now)."""
    if from_rollups(query) and table is not None and table.lo <= floor_to(since, MINUTE):
        first_whole = ceil_minute(since)
        n = table.count(query, first_whole, now)
        if since < first_whole:
            n += _count_logs(src, _pipeline(query, since, first_whole), None)
        return n, False, "rollups"
    n = _count_logs(src, _pipeline(query, since, now + timedelta(milliseconds=1)), cap)
    return n, n >= cap, "logs"


def evaluate(src: Sources, table: MinuteTable | None, rule: AlertRule, now: datetime, cap: int) -> Result:
    if rule.kind == "silence":
        return _silence(src, rule, now)
    since = now - timedelta(seconds=rule.window)
    n, capped, source = count(src, table, rule.query or "", since, now, cap)
    if rule.kind == "ratio":
        d, d_capped, _ = count(src, table, rule.of or "", since, now, cap)
        if d == 0:
            return Result(None, False, capped or d_capped, source)
        value = n / d
        capped = capped or d_capped
    else:
        value = float(n)
    return Result(value, _breaches(rule, value), capped, source)


def _breaches(rule: AlertRule, value: float) -> bool:
    if rule.above is not None:
        return value > rule.above
    return value < (rule.below if rule.below is not None else math.inf)


def glob_regex(glob: str) -> str:
    """A shell glob (`*`, `?`) as an anchored regex with everything else literal."""
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob) + "$"


def _glob(glob: str) -> str | dict[str, str]:
    return {"$regex": glob_regex(glob)} if any(c in glob for c in "*?") else glob


def _silence(src: Sources, rule: AlertRule, now: datetime) -> Result:
    since = now - timedelta(seconds=rule.for_)
    if rule.file:
        beats: dict[str, Any] = {"source": _glob(rule.file)}
        if rule.host:
            beats["host"] = _glob(rule.host)
        alive = src.heartbeats.count_documents({**beats, "at": {"$gte": since}}, limit=SILENCE_CAP)
        if alive or src.heartbeats.find_one(beats, {"_id": 1}) is not None:
            return Result(float(alive), alive == 0, alive >= SILENCE_CAP, "heartbeats")
    globs = {key: _glob(glob) for key, glob in (("host", rule.host), ("app", rule.app), ("source", rule.file))
             if glob is not None}
    n = _count_logs(src, _pipeline(rule.query, since, now + timedelta(milliseconds=1), globs), SILENCE_CAP)
    return Result(float(n), n == 0, n >= SILENCE_CAP, "logs")


def top_lines(src: Sources, rule: AlertRule, now: datetime, limit: int = TOP_LINES) -> list[dict[str, Any]]:
    """The newest records the rule counted (for the email): none for silence rules."""
    if rule.kind == "silence" or not rule.query:
        return []
    since = now - timedelta(seconds=rule.window)
    cursor = src.logs.aggregate([*_pipeline(rule.query, since, now + timedelta(milliseconds=1)),
                                 {"$sort": {"ts": -1}}, {"$limit": limit},
                                 {"$project": {"_id": 0, "ts": 1, "host": 1, "app": 1, "level": 1, "message": 1}}])
    return [{"ts": utc(d["ts"]).astimezone(UTC).isoformat().replace("+00:00", "Z"), "host": d.get("host"),
             "app": d.get("app"), "level": d.get("level"), "message": (d.get("message") or "")[:2000]}
            for d in cursor]
