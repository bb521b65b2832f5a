"""The web UI's only door to MongoDB: every read it makes, shaped to stay cheap.

Cost model (SecantusDB measured; a real MongoDB is never slower with the same
shape): a query costs about 20 us per document the chosen index yields, and
sort+limit does not stop early. So a page must ask only for a time slice that
holds about as many records as it shows:

* `search` walks the per-minute `rollups` back from the newest end of the window
  until they promise `limit` matching records, then queries just that slice; the
  rollups also tell which index yields the fewest candidates there (all records,
  one host, one app or one level), so the leading `$match` is exactly that
  index's shape (`{dim: value, ts: range}`) and the other filters follow in a
  second `$match` (SecantusDB plans only the leading one; MongoDB merges both).
  Text and source filters are not in the rollups: the slice widens 4x per round
  until the page is full or `scan_budget` candidates were examined; then the
  page ends early with a cursor that continues where the scan stopped.
* Without any rollups in the window (a consumer that does not write them), the
  slices grow blindly, 1, 4, 16 ... minutes.
* Histograms over more than 2 h, the hosts' calendars: from hourly tables folded
  out of the minute rollups and kept in `HourCache`, filled newest-first within
  a per-request budget (the answer says `complete: false` until it is filled).
* Context walks the (host, source, offset) index in growing byte bands and
  follows the byte-length chain of lines, so records of other files that once
  had the same path (offsets restart at 0 after rotation) do not leak in.

pymongo connection errors become `StoreUnavailable` here; nothing else in
`webui` imports pymongo.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from common.errors import StoreUnavailable
from webui.params import NO_LEVEL, Cursor, Filters

UTC = UTC
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
QUARTER = timedelta(minutes=15)
ERROR_LEVELS = ("error", "critical")
_FIELDS = {"_id": 1, "ts": 1, "received_at": 1, "host": 1, "app": 1, "source": 1, "offset": 1,
           "level": 1, "message": 1, "fields": 1, "parse_error": 1}
_ROLLUP_FIELDS = {"_id": 0, "t": 1, "host": 1, "app": 1, "level": 1, "n": 1}
_HOST_FIELDS = {"batches": 0}  # the consumer's redelivery guard list: large and of no use here
_ROTATED = re.compile(r"^(.+?)(?:[.-]\d{1,3}|[.-]\d{8}(?:\d{2,6})?|[.-]\d{4}-\d\d-\d\d(?:[T_.-]?\d{2,6})?)?"
                      r"(?:\.(?:gz|bz2|xz|zst))?$")


def utc(dt: datetime) -> datetime:
    """Datetimes from a client without tz_aware come back naive; they are UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def floor_to(dt: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(dt.timestamp() // seconds * seconds, UTC)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"database unreachable: {exc}") from exc


def _record(doc: dict[str, Any]) -> dict[str, Any]:
    rec = {"id": doc["_id"], "ts": utc(doc["ts"]), "received_at": utc(doc.get("received_at") or doc["ts"]),
           "host": doc.get("host", ""), "app": doc.get("app", ""), "source": doc.get("source", ""),
           "offset": doc.get("offset", 0), "level": doc.get("level"), "message": doc.get("message", ""),
           "fields": doc.get("fields") or {}}
    if doc.get("parse_error"):
        rec["parse_error"] = doc["parse_error"]
    return rec


def _level_value(level: str) -> str | None:
    return None if level == NO_LEVEL else level


def _matches_rollup(flt: Filters, host: str, app: str, level: str | None) -> bool:
    if flt.host is not None and host != flt.host:
        return False
    if flt.app is not None and app != flt.app:
        return False
    return not flt.levels or (level or NO_LEVEL) in flt.levels


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_cursor: Cursor | None
    searched_to: datetime | None = None  # set when the scan budget cut the page short
    scanned: int = 0


@dataclass
class _Counts:
    """Records in some minutes: all, matching the rollup-visible filters, per index dimension.

    Fractions of a minute count pro rata (records assumed evenly spread), hence floats.
    """

    total: float = 0
    match: float = 0
    host: float = 0
    app: float = 0
    levels: Counter = field(default_factory=Counter)

    def add(self, other: _Counts, share: float = 1.0) -> None:
        self.total += other.total * share
        self.match += other.match * share
        self.host += other.host * share
        self.app += other.app * share
        for level, n in other.levels.items():
            self.levels[level] += n * share

    def costs(self, flt: Filters) -> dict[str, int]:
        """Candidates each usable index would yield for these minutes."""
        costs = {"ts": self.total}
        if flt.host is not None:
            costs["host"] = self.host
        if flt.app is not None:
            costs["app"] = self.app
        if flt.levels and NO_LEVEL not in flt.levels:
            costs["level"] = sum(self.levels[lv] for lv in flt.levels)
        return costs


class _Budget:
    def __init__(self, limit: int):
        self.limit, self.spent = limit, 0

    @property
    def left(self) -> int:
        return self.limit - self.spent


class _SliceWalker:
    """Walks the minute rollups back from the window's newest end, fetching them in growing steps."""

    def __init__(self, store: Store, flt: Filters, lo: datetime, hi: datetime, budget: _Budget):
        self.store, self.flt, self.lo, self.budget = store, flt, lo, budget
        self.now = datetime.fromtimestamp(store.clock(), UTC)
        self.lo_minute = floor_to(lo, MINUTE)
        self.fetched_lo = floor_to(hi - timedelta(microseconds=1), MINUTE) + MINUTE
        self.step = 5 * MINUTE
        self.minutes: dict[datetime, _Counts] = {}
        self.docs_seen = 0

    def _fetch_more(self) -> bool:
        if self.fetched_lo <= self.lo_minute or self.budget.left <= 0:
            return False
        start = max(self.lo_minute, self.fetched_lo - self.step)
        for r in self.store.rollups.find({"t": {"$gte": start, "$lt": self.fetched_lo}}, _ROLLUP_FIELDS):
            counts = self.minutes.setdefault(utc(r["t"]), _Counts())
            n, host, app, level = r.get("n", 0), r.get("host"), r.get("app"), r.get("level")
            counts.total += n
            counts.match += n if _matches_rollup(self.flt, host, app, level) else 0
            counts.host += n if host == self.flt.host else 0
            counts.app += n if app == self.flt.app else 0
            counts.levels[level or NO_LEVEL] += n
            self.docs_seen += 1
            self.budget.spent += 1
        self.fetched_lo = start
        self.step = min(self.step * 2, 6 * HOUR)
        return True

    @property
    def blind(self) -> bool:
        """No rollups anywhere in the window: they cannot guide the slices."""
        return self.docs_seen == 0 and self.fetched_lo <= self.lo_minute

    def plan(self, b: datetime, target: float) -> tuple[datetime, _Counts]:
        """The slice [a, b) whose rollups promise `target` matching records, and its counts.

        The oldest minute is cut to the share that should hold the rest (plus a margin),
        so a busy minute (thousands of records) is not read whole for a 100-line page.
        """
        acc, a = _Counts(), b
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
            if counts is not None and counts.match > 0 and acc.match + counts.match * share >= target:
                part = min(share, (target - acc.match) / counts.match * 1.25)
                acc.add(counts, part)
                return max(seg_start, min(b, minute + span) - max(span * part, timedelta(milliseconds=1))), acc
            if counts is not None:
                acc.add(counts, share)
            a = seg_start
            minute -= MINUTE
            if min(acc.costs(self.flt).values()) >= self.budget.left:
                break
        return a, acc


class HourCache:
    """Hourly tables folded from the minute rollups: {(host, app, level): [n per quarter hour]}.

    Only settled hours (ended `settle` ago) are kept, for `ttl` seconds, so late
    records still show up; at most `max_hours` tables are held.
    """

    def __init__(self, store: Store, clock: Callable[[], float], ttl: float = 600.0,
                 settle: timedelta = timedelta(minutes=15), max_hours: int = 24 * 92):
        self.store, self.clock, self.ttl, self.settle, self.max_hours = store, clock, ttl, settle, max_hours
        self._tables: dict[datetime, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def _cached(self, hour: datetime) -> dict | None:
        with self._lock:
            hit = self._tables.get(hour)
        if hit and self.clock() - hit[0] < self.ttl:
            return hit[1]
        return None

    def tables(self, hours: list[datetime], budget: _Budget) -> dict[datetime, dict | None]:
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
            for r in self.store.rollups.find({"t": {"$gte": start, "$lt": end}}, _ROLLUP_FIELDS):
                t = utc(r["t"])
                hour = floor_to(t, HOUR)
                slots = fresh[hour].setdefault((r.get("host"), r.get("app"), r.get("level")), [0, 0, 0, 0])
                slots[(t.minute // 15)] += r.get("n", 0)
                budget.spent += 1
            stamp = self.clock()
            with self._lock:
                for hour, table in fresh.items():
                    if hour + HOUR <= now - self.settle:
                        self._tables[hour] = (stamp, table)
                while len(self._tables) > self.max_hours:
                    del self._tables[min(self._tables)]
            out.update(fresh)
        return out


def _rotation_base(path: str) -> str:
    match = _ROTATED.match(path)
    return match.group(1) if match else path


def _blen(rec: dict[str, Any]) -> int:
    return len(rec["message"].encode("utf-8", "surrogatepass"))


def _neighbour(cur: dict[str, Any], pool: list[dict[str, Any]], direction: int) -> dict[str, Any] | None:
    """The line next to `cur` in its file: the one whose byte length chains exactly, else the nearest plausible."""
    def span(line: dict[str, Any]) -> tuple[int, int]:
        size, inner = _blen(line), line["message"].count("\n")
        return size, size + 2 + inner  # LF, CRLF, CRLF inside a multiline event

    best, best_rank = None, None
    for rec in pool:
        gap = (rec["offset"] - cur["offset"]) * direction
        size, widest = span(cur if direction > 0 else rec)
        if not 1 <= gap <= widest:
            continue
        exact = gap in (size + 1, size + 2, widest)
        rank = (not exact, gap, abs((rec["ts"] - cur["ts"]).total_seconds()))
        if best_rank is None or rank < best_rank:
            best, best_rank = rec, rank
    return best


class Store:
    """Reads `logs`, `rollups` and `hosts`. One per app; thread-safe like the pymongo client."""

    def __init__(self, db: Database, scan_budget: int = 40_000, clock: Callable[[], float] = time.time):
        self.db, self.scan_budget, self.clock = db, scan_budget, clock
        self.logs, self.rollups, self.hosts_coll = db["logs"], db["rollups"], db["hosts"]
        self.hours = HourCache(self, clock)

    def ping(self) -> None:
        with _translated():
            self.db.command("ping")

    def ensure_indexes(self) -> None:
        """The indexes the consumer creates; tests call this, the UI itself never writes."""
        with _translated():
            self.logs.create_index([("ts", DESCENDING)])
            for key in ("host", "app", "level"):
                self.logs.create_index([(key, ASCENDING), ("ts", DESCENDING)])
            self.logs.create_index([("host", ASCENDING), ("source", ASCENDING), ("offset", ASCENDING)])
            self.rollups.create_index([("t", ASCENDING)])

    # ---- search -------------------------------------------------------------------------------

    def search(self, flt: Filters, limit: int, cursor: Cursor | None = None,
               budget: int | None = None) -> Page:
        """The newest `limit` records matching `flt` (older than `cursor`), newest first."""
        with _translated():
            return self._search(flt, limit, cursor, _Budget(budget or self.scan_budget))

    def _search(self, flt: Filters, limit: int, cursor: Cursor | None, budget: _Budget) -> Page:
        lo, hi = flt.since, flt.until
        if cursor is not None:
            hi = min(hi, cursor.ts + timedelta(milliseconds=1) if cursor.id else cursor.ts)
        walker = _SliceWalker(self, flt, lo, hi, budget)
        # The newest minutes may not be rolled up yet: never trust "no records" there.
        unrolled = datetime.fromtimestamp(self.clock(), UTC) - 2 * MINUTE
        blind_dim = next((d for d in ("host", "app") if getattr(flt, d) is not None), "ts")
        out: list[dict[str, Any]] = []
        b, rounds, blind_step = hi, 0, MINUTE
        while len(out) < limit and b > lo:
            need = limit - len(out)
            target = need * 4 ** rounds if flt.text_only_in_logs else need
            a, counts = walker.plan(b, target)
            if walker.blind:
                a = max(lo, b - blind_step)
                blind_step *= 4
                docs = self._slice(flt, a, b, blind_dim, need, cursor)
                budget.spent += len(docs)
            elif counts.match > 0:
                costs = counts.costs(flt)
                dim = min(costs, key=costs.__getitem__)
                docs = self._slice(flt, a, b, dim, need, cursor)
                budget.spent += math.ceil(costs[dim])
            elif b > unrolled:
                a = max(a, unrolled)
                docs = self._slice(flt, a, b, blind_dim, need, cursor)
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

    def _slice(self, flt: Filters, a: datetime, b: datetime, dim: str, limit: int,
               cursor: Cursor | None) -> list[dict[str, Any]]:
        ts = {"$gte": a, "$lt": b}
        residual: dict[str, Any] = {}
        for key in ("host", "app", "source"):
            value = getattr(flt, key)
            if value is not None and key != dim:
                residual[key] = value
        if flt.levels and dim != "level":
            residual["level"] = {"$in": [_level_value(lv) for lv in flt.levels]}
        if flt.q is not None:
            residual["message"] = {"$regex": re.escape(flt.q), "$options": "i"}
        if cursor is not None and cursor.id and a <= cursor.ts < b:
            residual["$or"] = [{"ts": {"$lt": cursor.ts}}, {"_id": {"$lt": cursor.id}}]
        if dim == "ts":
            leads = [{"ts": ts}]
        elif dim == "level":
            leads = [{"level": lv, "ts": ts} for lv in flt.levels]
        else:
            leads = [{dim: getattr(flt, dim), "ts": ts}]
        docs: list[dict[str, Any]] = []
        for lead in leads:
            pipeline: list[dict[str, Any]] = [{"$match": lead}]
            if residual:
                pipeline.append({"$match": residual})
            pipeline += [{"$sort": {"ts": -1, "_id": -1}}, {"$limit": limit}, {"$project": _FIELDS}]
            docs.extend(self.logs.aggregate(pipeline))
        records = [_record(d) for d in docs]
        if len(leads) > 1:
            records.sort(key=lambda r: (r["ts"], r["id"]), reverse=True)
        return records[:limit]

    def iter_records(self, flt: Filters, max_rows: int, page_size: int = 1000,
                     max_scanned: int = 2_000_000) -> Iterator[dict[str, Any]]:
        """Every record matching `flt`, newest first, up to `max_rows` (for exports)."""
        cursor, rows, scanned = None, 0, 0
        while rows < max_rows and scanned < max_scanned:
            page = self.search(flt, min(page_size, max_rows - rows), cursor)
            yield from page.records
            rows, scanned = rows + len(page.records), scanned + page.scanned
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # ---- context ------------------------------------------------------------------------------

    def record(self, record_id: str) -> dict[str, Any] | None:
        with _translated():
            doc = self.logs.find_one({"_id": record_id}, _FIELDS)
        return _record(doc) if doc else None

    def context(self, record_id: str, before: int, after: int) -> list[dict[str, Any]] | None:
        """Up to `before` lines before the record, the record, up to `after` after: its file, in file order."""
        anchor = self.record(record_id)
        if anchor is None:
            return None
        with _translated():
            family = self._rotation_family(anchor["host"], anchor["source"])
            older = self._walk(anchor, family, before, -1)
            newer = self._walk(anchor, family, after, +1)
        return older[::-1] + [anchor] + newer

    def _rotation_family(self, host: str, source: str) -> list[str]:
        """The anchor's path and its rotated names (app.log, app.log.1, app.log-20260101) seen on that host."""
        base = _rotation_base(source)
        doc = self.hosts_coll.find_one({"_id": host}, {"sources": 1}) or {}
        known = [s for s in doc.get("sources") or [] if isinstance(s, str)]
        if base != source and base not in known:
            return [source]
        family = [s for s in known if _rotation_base(s) == base]
        return sorted(set(family) | {source})[:16]

    def _walk(self, anchor: dict[str, Any], family: list[str], n: int, direction: int,
              max_docs: int = 20_000, max_reach: int = 8 << 20) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pool: list[dict[str, Any]] = []
        cur, edge, width, fetched = anchor, anchor["offset"], 256 * (n + 4), 0
        while len(out) < n:
            nxt = _neighbour(cur, pool, direction)
            if nxt is not None:
                out.append(nxt)
                pool.remove(nxt)
                cur = nxt
                continue
            if direction > 0 and edge >= cur["offset"] + _blen(cur) + 2 + cur["message"].count("\n"):
                break  # the whole span where a next line could start was fetched: the file ends here
            if direction < 0 and edge <= 0:
                break
            if fetched >= max_docs or abs(edge - anchor["offset"]) >= max_reach:
                break
            if direction > 0:
                band = {"$gt": edge, "$lte": edge + width}
                edge += width
            else:
                band = {"$gte": max(0, edge - width), "$lt": edge}
                edge = max(0, edge - width)
            width *= 4
            for source in family:
                for doc in self.logs.find({"host": anchor["host"], "source": source, "offset": band}, _FIELDS):
                    if doc["_id"] != anchor["id"]:
                        pool.append(_record(doc))
                    fetched += 1
        return out

    # ---- volume -------------------------------------------------------------------------------

    def histogram(self, flt: Filters, bucket: timedelta, budget: int | None = None) -> dict[str, Any]:
        """Counts per bucket and level over the window; `complete` is False where the budget ran out."""
        with _translated():
            return self._histogram(flt, bucket, _Budget(budget or self.scan_budget))

    def _histogram(self, flt: Filters, bucket: timedelta, budget: _Budget) -> dict[str, Any]:
        start = floor_to(flt.since, bucket)
        starts = []
        t = start
        while t < flt.until:
            starts.append(t)
            t += bucket
        counts: dict[datetime, Counter | None] = {s: Counter() for s in starts}
        text_applied = False
        if flt.text_only_in_logs:
            estimate = self._estimate(flt, budget)
            if estimate is not None and estimate <= budget.left:
                self._histogram_from_logs(flt, bucket, counts)
                budget.spent += estimate
                text_applied = True
        if text_applied:
            pass
        elif bucket < QUARTER:
            for r in self.rollups.find({"t": {"$gte": floor_to(flt.since, MINUTE), "$lt": flt.until}},
                                       _ROLLUP_FIELDS):
                budget.spent += 1
                if _matches_rollup(flt, r.get("host"), r.get("app"), r.get("level")):
                    counts[floor_to(utc(r["t"]), bucket)][r.get("level") or NO_LEVEL] += r.get("n", 0)
        else:
            hours = self._hours(floor_to(flt.since, QUARTER), flt.until)
            tables = self.hours.tables(hours, budget)
            for hour, table in tables.items():
                for i in range(4):
                    key = floor_to(hour + i * QUARTER, bucket)
                    if key not in counts:
                        continue
                    if table is None:
                        counts[key] = None
                    elif counts[key] is not None:
                        for (host, app, level), slots in table.items():
                            if slots[i] and _matches_rollup(flt, host, app, level):
                                counts[key][level or NO_LEVEL] += slots[i]
        buckets = [{"start": s, "count": None if c is None else sum(c.values()),
                    "levels": None if c is None else dict(c)} for s, c in counts.items()]
        return {"buckets": buckets, "bucket_seconds": int(bucket.total_seconds()),
                "complete": all(b["count"] is not None for b in buckets),
                "text_filter_applied": text_applied or not flt.text_only_in_logs}

    @staticmethod
    def _hours(lo: datetime, hi: datetime) -> list[datetime]:
        hours, h = [], floor_to(lo, HOUR)
        while h < hi:
            hours.append(h)
            h += HOUR
        return hours

    def _estimate(self, flt: Filters, budget: _Budget) -> int | None:
        """Records the rollup-visible filters match in the window, if the rollups can tell within budget."""
        walker = _SliceWalker(self, flt, flt.since, flt.until, budget)
        a, counts = walker.plan(flt.until, float("inf"))
        if a > flt.since or walker.blind:
            return None
        return math.ceil(min(counts.costs(flt).values()))

    def _histogram_from_logs(self, flt: Filters, bucket: timedelta,
                             counts: dict[datetime, Counter | None]) -> None:
        match: dict[str, Any] = {}
        for key in ("host", "app", "source"):
            if getattr(flt, key) is not None:
                match[key] = getattr(flt, key)
        if flt.levels:
            match["level"] = {"$in": [_level_value(lv) for lv in flt.levels]}
        if flt.q is not None:
            match["message"] = {"$regex": re.escape(flt.q), "$options": "i"}
        seconds = int(bucket.total_seconds())
        pipeline: list[dict[str, Any]] = [{"$match": {"ts": {"$gte": flt.since, "$lt": flt.until}}}]
        if match:
            pipeline.append({"$match": match})
        pipeline.append({"$group": {"_id": {"t": {"$dateTrunc": {"date": "$ts", "unit": "second", "binSize": seconds}},
                                            "level": "$level"}, "n": {"$sum": 1}}})
        for row in self.logs.aggregate(pipeline):
            key = floor_to(utc(row["_id"]["t"]), bucket)
            if counts.get(key) is not None:
                counts[key][row["_id"].get("level") or NO_LEVEL] += row["n"]

    # ---- hosts --------------------------------------------------------------------------------

    def hosts(self, limit: int = 2000) -> list[dict[str, Any]]:
        with _translated():
            return [self._host(d) for d in self.hosts_coll.find({}, _HOST_FIELDS).sort("_id", ASCENDING).limit(limit)]

    def host(self, name: str) -> dict[str, Any] | None:
        with _translated():
            doc = self.hosts_coll.find_one({"_id": name}, _HOST_FIELDS)
        return self._host(doc) if doc else None

    def _host(self, doc: dict[str, Any]) -> dict[str, Any]:
        first, last = utc(doc.get("first_seen") or doc["last_seen"]), utc(doc["last_seen"])
        days = max(1.0, (datetime.fromtimestamp(self.clock(), UTC) - first).total_seconds() / 86400)
        records, errors = int(doc.get("records") or 0), int(doc.get("errors") or 0)
        return {"host": doc["_id"], "first_seen": first, "last_seen": last, "records": records, "errors": errors,
                "records_per_day": round(records / days, 1), "errors_per_day": round(errors / days, 1),
                "last_error": utc(doc["last_error"]) if doc.get("last_error") else None,
                "apps": sorted(doc.get("apps") or []), "sources": sorted(doc.get("sources") or [])}

    def apps(self) -> list[str]:
        with _translated():
            return sorted({a for d in self.hosts_coll.find({}, {"apps": 1}).limit(2000) for a in d.get("apps") or []})

    def calendar(self, host: str, days: int, budget: int | None = None) -> dict[str, Any]:
        """Records and errors per UTC day for `host` over the last `days` days."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        today = floor_to(now, timedelta(days=1))
        first = today - timedelta(days=days - 1)
        with _translated():
            tables = self.hours.tables(self._hours(first, now), _Budget(budget or self.scan_budget))
        per_day: dict[datetime, list[int] | None] = {first + timedelta(days=i): [0, 0] for i in range(days)}
        for hour, table in tables.items():
            day = floor_to(hour, timedelta(days=1))
            if per_day.get(day) is None:
                continue
            if table is None:
                per_day[day] = None
                continue
            for (h, _app, level), slots in table.items():
                if h == host:
                    per_day[day][0] += sum(slots)
                    per_day[day][1] += sum(slots) if level in ERROR_LEVELS else 0
        rows = [{"date": d.date().isoformat(), "count": None if v is None else v[0],
                 "errors": None if v is None else v[1]} for d, v in per_day.items()]
        return {"days": rows, "complete": all(r["count"] is not None for r in rows)}


_BUCKETS = tuple(timedelta(seconds=s) for s in (60, 900, 3600, 3 * 3600, 6 * 3600, 86400))


def bucket_for(span: timedelta, max_buckets: int = 120) -> timedelta:
    """Minute buckets up to 2 h (from the minute rollups), then quarter hours and up (from `HourCache`)."""
    for bucket in _BUCKETS:
        if span / bucket <= max_buckets:
            return bucket
    return _BUCKETS[-1]


def get_store() -> Store:
    """The app's Store (made by `create_app`), for views."""
    return current_app.extensions["opslog.store"]
