"""What one message's documents add to the `rollups` and `hosts` counters.

Pure computation, no database: the store applies these counts with guarded
upserts (see `consumer.store`). One pass over the documents builds a counter of
(minute, received_at, host, app, level, source); both the per-minute rollups and
the per-host totals are folded out of it, so the cost per record is a timedelta,
one tuple and one hash (bench/README.md, "The consumer").

A rollup's `_id` is its key parts joined with `|` (`rollup_id`). Host and app
names come from shippers and may hold a `|` themselves: such a key is spelled as
the JSON array of its parts instead, so (web, x|y) and (web|x, y) stay apart. Every
other id is the same as before that change, so rollups written by older consumers
go on being counted into, and a message redelivered across an upgrade is still
recognised by its rollups' guard lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from common.record import ERROR_LEVELS

_EPOCH = datetime(1970, 1, 1)  # naive, as document times are
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class MinuteCount:
    """Records of one (minute, host, app, level): one `rollups` document."""

    key: str  # the rollup's _id (`rollup_id`)
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
    """The rollup and host counts of `docs` (documents as `common.record.to_document` makes them:
    times are naive datetimes in UTC)."""
    # One pass counts the records of each (minute, received_at, host, app, level, source); a
    # batch holds few (received_at is shared by the lines read together), so the rest is per cell.
    cells = Counter(((d["ts"] - _EPOCH) // _MINUTE, d["received_at"], d["host"], d["app"], d.get("level"),
                     d["source"]) for d in docs)
    minutes: Counter[tuple[int, str, str, str | None]] = Counter()
    hosts: dict[str, HostCount] = {}
    for (minute, received_at, host, app, level, source), n in cells.items():
        minutes[minute * 60, host, app, level] += n
        count = hosts.get(host) or hosts.setdefault(host, HostCount(host, first_seen=received_at,
                                                                    last_seen=received_at))
        count.records += n
        count.first_seen = min(count.first_seen, received_at)
        count.last_seen = max(count.last_seen, received_at)
        if level in ERROR_LEVELS:
            count.errors += n
            count.last_error = received_at if count.last_error is None else max(count.last_error, received_at)
        count.apps.add(app)
        count.sources.add(source)
    return Tally(
        [MinuteCount(rollup_id(minute, host, app, level), datetime.fromtimestamp(minute, UTC), host, app, level, n)
         for (minute, host, app, level), n in minutes.items()],
        list(hosts.values()))


def rollup_id(minute: int, host: str, app: str, level: str | None) -> str:
    """The `_id` of the rollup of (minute in epoch seconds, host, app, level): unambiguous.

    "<minute>|host|app|level or '-'" while neither name holds a `|` (the form older
    consumers wrote, kept so an upgrade neither splits nor re-counts a rollup); otherwise
    the JSON array of the four parts, which starts with `[`, as no number does."""
    if "|" in host or "|" in app:
        return orjson.dumps([minute, host, app, level or "-"]).decode()
    return f"{minute}|{host}|{app}|{level or '-'}"
