"""What one message's documents add to the `rollups` and `hosts` counters.

Pure computation, no database: the store applies these counts with guarded
upserts (see `consumer.store`). One pass over the documents builds a counter of
(minute, host, app, level, source); both the per-minute rollups and the per-host
totals are folded out of it, so the cost per record is one tuple and one hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

ERROR_LEVELS = frozenset(("error", "critical"))
_RECEIVED_AT = itemgetter("received_at")


@dataclass(frozen=True, slots=True)
class MinuteCount:
    """Records of one (minute, host, app, level): one `rollups` document."""

    key: str  # the rollup's _id, "<epoch seconds of the minute>|host|app|level or '-'"
    minute: datetime
    host: str
    app: str
    level: str | None
    n: int


@dataclass(slots=True)
class HostCount:
    """One host's share of a message: what its `hosts` document gains."""

    host: str
    records: int = 0
    errors: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_error: datetime | None = None
    apps: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Tally:
    minutes: list[MinuteCount]
    hosts: list[HostCount]


def tally(docs: Sequence[dict[str, Any]]) -> Tally:
    """The rollup and host counts of `docs` (documents as `common.record.to_document` makes them)."""
    if not docs:
        return Tally([], [])
    # The minute as epoch seconds: datetime.replace() on aware datetimes costs ~4 µs, this ~0.3.
    cells = Counter((int(d["ts"].timestamp() // 60) * 60, d["host"], d["app"], d.get("level"), d["source"])
                    for d in docs)
    minutes: Counter[tuple[int, str, str, str | None]] = Counter()
    hosts: dict[str, HostCount] = {}
    for (minute, host, app, level, source), n in cells.items():
        minutes[minute, host, app, level] += n
        count = hosts.get(host) or hosts.setdefault(host, HostCount(host))
        count.records += n
        if level in ERROR_LEVELS:
            count.errors += n
        count.apps.add(app)
        count.sources.add(source)
    if len(hosts) == 1:  # the rule: a message comes from one shipper, so one host
        only = next(iter(hosts.values()))
        only.first_seen, only.last_seen = min(map(_RECEIVED_AT, docs)), max(map(_RECEIVED_AT, docs))
    else:
        for count in hosts.values():
            seen = [d["received_at"] for d in docs if d["host"] == count.host]
            count.first_seen, count.last_seen = min(seen), max(seen)
    for count in hosts.values():
        if count.errors:
            count.last_error = max(d["received_at"] for d in docs
                                   if d["host"] == count.host and d.get("level") in ERROR_LEVELS)
    return Tally(
        [MinuteCount(f"{minute}|{host}|{app}|{level or '-'}", datetime.fromtimestamp(minute, UTC), host, app, level, n)
         for (minute, host, app, level), n in minutes.items()],
        list(hosts.values()))
