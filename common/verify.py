"""Per-file coverage recomputed from the stored records themselves, and each file's report.

`verify_files` walks the `logs` index (host, file, offset, len) of each file, in offset order,
reading nothing but those keys (a covered query on MongoDB), so the proof does not rest on the
`coverage` side table: that table only names the causes (a cut line, records stored and then
deleted, records the retention removed). `file_report` is one file's line for the API, the
host page and `opslog verify`, from either source of ranges.

It is given the collections (pymongo's, or anything with the same `find`) and imports no
driver: the consumer's `opslog verify` and the web UI's verify button both call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from common import coverage

WALK_BATCH = 10_000
MAX_FILES = 2000


def epoch(when: Any) -> float | None:
    """A stored time (aware, or naive meaning UTC) as epoch seconds."""
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def walk(logs: Any, host: str, file: str) -> tuple[list[list[int]], int]:
    """The stored ranges of one file (or journal input) from its records, and how many records there are."""
    count = 0
    journal = file.startswith(coverage.JOURNAL)

    def pairs() -> Iterable[tuple[int, int]]:
        nonlocal count
        cursor = logs.find({"host": host, "file": file}, {"_id": 0, "offset": 1, "len": 1},
                           sort=[("offset", 1)], batch_size=WALK_BATCH)
        for doc in cursor:
            count += 1
            length = doc.get("len") or 0
            yield coverage.record_start(journal, doc["offset"], length), length

    ranges = coverage.from_records(pairs())
    return (coverage.merge(ranges) if journal else ranges), count


def file_report(host: str, file: str, cov: dict[str, Any] | None, hb: dict[str, Any] | None, now: float,
                stale_after: float, retention: float | None, walked: list[list[int]] | None = None,
                first_stored: int | None = None) -> dict[str, Any]:
    """One file's coverage: from `cov` (the `coverage` document), or from `walked` (ranges
    recomputed from the records), with `hb` (its newest heartbeat) for size, lag and silence.
    `first_stored` (the offset of the file's first stored record) places the retention's boundary."""
    cutoff = now - retention if retention else None
    cov = cov or {}
    if walked:
        first_stored = walked[0][0]
    recorded, expired_through = coverage.expire(cov.get("ranges") or [], cutoff, first_stored)
    cuts = cov.get("cuts") or []
    if walked is None:
        ranges = recorded
        gaps = coverage.interior_gaps(ranges, cuts)
    else:
        ranges, gaps = _walked_gaps(walked, cov.get("ranges") or [], recorded, cuts, cutoff)
    stored_end = ranges[-1][1] if ranges else (expired_through or 0)
    beat = None
    if hb is not None:
        beat = {**hb, "at": epoch(hb["at"])}
    tail = coverage.tail(stored_end, beat, now, stale_after)
    if tail["tail_gap"]:
        gaps.append(tail["tail_gap"])
    if hb and hb.get("skipped"):
        gaps = coverage.vacuumed(gaps, hb["skipped"])
    names = [*(hb or {}).get("names", []), *sorted(cov.get("names") or [])]
    source = (hb or {}).get("source") or (names[0] if names else None)
    names = list(dict.fromkeys([source, *reversed(names)])) if source else []
    return {
        "host": host, "file": file, "source": source, "names": names,
        "first_offset": ranges[0][0] if ranges else None,
        "stored_through": coverage.stored_through([r[:2] for r in ranges]),
        "stored_end": stored_end,
        "stored_bytes": sum(r[1] - r[0] for r in ranges),
        "gaps": [g[:2] for g in gaps], "gap_causes": [g[2] for g in gaps],
        "expired_through": expired_through,
        "size": tail["size"], "confirmed": tail["confirmed"], "state": tail["state"],
        "in_flight": tail["in_flight"], "lag_bytes": tail["lag_bytes"], "lag_seconds": tail["lag_seconds"],
        "last_record_at": cov.get("last_record_at"),
        "last_heartbeat_at": hb.get("at") if hb else None,
        "silent": tail["silent"],
        "capped": bool(cov.get("capped")),
    }


def _walked_gaps(walked: list[list[int]], recorded_all: list[list[int]], recorded: list[list[int]],
                 cuts: list[int], cutoff: float | None) -> tuple[list[list[int]], list[list[Any]]]:
    """The gaps of ranges recomputed from records, each with its cause. Bytes the side table says
    were stored and whose records are gone were deleted; gone because of the retention, they are
    no gap (coverage starts after them)."""
    live = [r for r in walked]
    if recorded and live and recorded[0][0] < live[0][0]:
        live.insert(0, [recorded[0][0], recorded[0][0]])  # a head the side table has and the records lack
    cut = set(cuts)
    gaps: list[list[Any]] = []
    for start, end in coverage.gaps(live):
        overlapping = [r for r in recorded_all if r[0] < end and start < r[1]]
        if overlapping and cutoff is not None and any(r[-1] < cutoff for r in overlapping if len(r) > 2):
            continue  # records there passed the retention: the TTL monitor removes them
        if start in cut:
            cause = "max_line_bytes"
        elif overlapping:
            cause = "deleted"
        else:
            cause = "missing"
        gaps.append([start, end, cause])
    return [r for r in live if r[1] > r[0]], gaps


def verify_files(logs: Any, coverage_docs: Any, heartbeats: Any, *, host: str | None = None,
                 source: str | None = None, now: datetime | None = None, stale_after: float = 900.0,
                 retention: float | None = None) -> list[dict[str, Any]]:
    """Every file's report, its ranges recomputed from the stored records (see module docstring).
    `host` and `source` (a path it had, current or rotated) narrow the files."""
    when = (now or datetime.now(UTC)).timestamp()
    files = _files(logs, coverage_docs, heartbeats, host, source)
    reports = []
    for h, f in sorted(files)[:MAX_FILES]:
        cov = coverage_docs.find_one({"_id": f"{h}\0{f}"}, {"ranges": 1, "cuts": 1, "names": 1, "last_record_at": 1})
        hb = heartbeats.find_one({"_id": f"{h}\0{f}"})
        ranges, count = walk(logs, h, f)
        report = file_report(h, f, cov, hb, when, stale_after, retention, walked=ranges)
        report["records"] = count
        reports.append(report)
    return reports


def _files(logs: Any, coverage_docs: Any, heartbeats: Any, host: str | None,
           source: str | None) -> set[tuple[str, str]]:
    """The (host, file) pairs to verify: those with stored records, and those the side tables know."""
    hosts = [host] if host is not None else [h for h in logs.distinct("host") if isinstance(h, str)]
    pairs: set[tuple[str, str]] = set()
    for h in hosts:
        query: dict[str, Any] = {"host": h}
        if source is not None:
            query["source"] = source
        pairs.update((h, f) for f in logs.distinct("file", query) if isinstance(f, str))
    side: dict[str, Any] = {} if host is None else {"host": host}
    if source is not None:
        side["names"] = source
    for collection in (coverage_docs, heartbeats):
        pairs.update((d["host"], d["file"]) for d in collection.find(side, {"host": 1, "file": 1}).limit(MAX_FILES))
    return pairs


def summary_line(report: dict[str, Any]) -> str:
    """`opslog verify`'s line for a file."""
    gaps = report["gaps"]
    state = "GAP" if gaps else "OK"
    parts = [f"{state} {report['host']} {report['source'] or '?'} (file {report['file']}):",
             f"{report.get('records', 0)} records",
             f"stored {report['first_offset']}..{report['stored_end']}" if report["first_offset"] is not None
             else "nothing stored"]
    if report["size"] is not None:
        unit = "entries" if report["file"].startswith(coverage.JOURNAL) else "bytes"
        parts.append(f"size {report['size']}, lag {report['lag_bytes']} {unit}")
    if report["expired_through"]:
        parts.append(f"expired by retention through {report['expired_through']}")
    if gaps:
        listed = ", ".join(f"[{s}, {e}) {c}" for (s, e), c in zip(gaps[:20], report["gap_causes"], strict=False))
        more = f" and {len(gaps) - 20} more" if len(gaps) > 20 else ""
        parts.append(f"{len(gaps)} gap(s): {listed}{more}")
    return "; ".join(parts)
