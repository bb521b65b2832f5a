"""Per-file completeness for the host page and the API: stored ranges, gaps and their causes, lag,
silence; from the consumer's `coverage` and `heartbeats` documents (cheap: one document per file),
or recomputed from the records themselves (`verify`, common.verify).

The record at each edge of a gap is looked up (the `logs` index host, file, offset), so the page
can open the context view there: two index reads per gap, for the first MAX_EDGE_GAPS gaps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.verify import epoch, file_report, verify_files

MAX_FILES = 2000
MAX_EDGE_GAPS = 50
_COVERAGE_FIELDS = {"ranges": 1, "cuts": 1, "names": 1, "last_record_at": 1, "capped": 1, "host": 1, "file": 1}


def host_files(logs: Any, coverage: Any, heartbeats: Any, host: str, now: datetime, stale_after: float,
               retention: float | None) -> list[dict[str, Any]]:
    covs = {d["file"]: d for d in coverage.find({"host": host}, _COVERAGE_FIELDS).limit(MAX_FILES)}
    beats = {d["file"]: d for d in heartbeats.find({"host": host}).limit(MAX_FILES)}
    when = now.timestamp()
    files = [file_report(host, f, covs.get(f), beats.get(f), when, stale_after, retention,
                         first_stored=_first_stored(logs, host, f, covs.get(f), when, retention))
             for f in sorted(set(covs) | set(beats))]
    files.sort(key=lambda r: (r["source"] or "", r["file"]))
    add_gap_edges(logs, files)
    return files


def _first_stored(logs: Any, host: str, file: str, cov: dict[str, Any] | None, now: float,
                  retention: float | None) -> int | None:
    """Where the file's stored records start, looked up (one index read) only when the retention
    may have removed its first ones."""
    ranges = (cov or {}).get("ranges") or []
    if not retention or not ranges or len(ranges[0]) < 4 or ranges[0][3] >= now - retention:
        return None
    doc = next(iter(logs.find({"host": host, "file": file}, {"_id": 0, "offset": 1}, sort=[("offset", 1)], limit=1)),
               None)
    return doc["offset"] if doc else None


def verified_files(logs: Any, coverage: Any, heartbeats: Any, host: str, now: datetime, stale_after: float,
                   retention: float | None) -> list[dict[str, Any]]:
    files = verify_files(logs, coverage, heartbeats, host=host, now=now, stale_after=stale_after,
                         retention=retention)
    files.sort(key=lambda r: (r["source"] or "", r["file"]))
    add_gap_edges(logs, files)
    return files


def add_gap_edges(logs: Any, files: list[dict[str, Any]]) -> None:
    """Each gap's `gap_edges`: the ids of the stored record ending at its start and of the one
    starting at its end (None where there is none), for the context view."""
    budget = MAX_EDGE_GAPS
    for report in files:
        edges = []
        for start, end in report["gaps"]:
            if budget <= 0:
                break
            budget -= 1
            query = {"host": report["host"], "file": report["file"]}
            before = next(iter(logs.find({**query, "offset": {"$lt": start}}, {"_id": 1},
                                         sort=[("offset", -1)], limit=1)), None)
            after = next(iter(logs.find({**query, "offset": {"$gte": end}}, {"_id": 1},
                                        sort=[("offset", 1)], limit=1)), None)
            edges.append([before["_id"] if before else None, after["_id"] if after else None])
        report["gap_edges"] = edges


def hosts_health(coverage: Any, heartbeats: Any, now: datetime, stale_after: float,
                 retention: float | None, limit: int = 20_000) -> dict[str, dict[str, Any]]:
    """Per host: the worst lag of its files, whether any has a gap, and whether the host is silent
    (its newest heartbeat is older than `stale_after`; None when it never sent one)."""
    when = now.timestamp()
    covs = {(d["host"], d["file"]): d for d in coverage.find({}, _COVERAGE_FIELDS).limit(limit)}
    beats = {(d["host"], d["file"]): d for d in heartbeats.find({}).limit(limit)}
    out: dict[str, dict[str, Any]] = {}
    for key in set(covs) | set(beats):
        report = file_report(key[0], key[1], covs.get(key), beats.get(key), when, stale_after, retention)
        health = out.setdefault(key[0], {"lag_bytes": 0, "lag_seconds": 0.0, "has_gap": False, "silent": None,
                                         "last_heartbeat_at": None})
        health["lag_bytes"] = max(health["lag_bytes"], report["lag_bytes"])
        health["lag_seconds"] = max(health["lag_seconds"], report["lag_seconds"])
        health["has_gap"] = health["has_gap"] or bool(report["gaps"])
        at = report["last_heartbeat_at"]
        if at is not None and (health["last_heartbeat_at"] is None or epoch(at) > epoch(health["last_heartbeat_at"])):
            health["last_heartbeat_at"] = at
    for health in out.values():
        at = health["last_heartbeat_at"]
        if at is not None:
            health["silent"] = when - (epoch(at) or 0.0) > stale_after
    return out
