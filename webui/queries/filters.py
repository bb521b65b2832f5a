"""What a read asks for: `Filters` (a time window and the values records must have) and
`Cursor` (where the previous page ended).

The query layer's own types, built by whoever understands the request: today
`webui.params` from the query string; a query-language parser and planner
(`q=level:error AND host:web-*`) will produce what the reads take here. Every
value stays plain (a string, a datetime, a tuple of levels): `queries.logs`
alone turns them into MongoDB filters, so no value can become an operator or
an unescaped regex.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_LEVEL = "none"  # records whose level is unknown (field absent)


@dataclass(frozen=True)
class Cursor:
    """Position after the last record shown: the next page holds records strictly older in (ts, id)."""

    ts: datetime
    id: str = ""  # "" means "everything older than ts" (a page cut short by the scan budget)

    def encode(self) -> str:
        # Record times are whole milliseconds; a bare time bound rounds up so no record is skipped.
        us = (self.ts - EPOCH) // timedelta(microseconds=1)
        ms = us // 1000 if self.id else -(-us // 1000)
        return base64.urlsafe_b64encode(f"{ms}.{self.id}".encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Filters:
    since: datetime
    until: datetime
    host: str | None = None
    app: str | None = None
    source: str | None = None
    levels: tuple[str, ...] = ()
    q: str | None = None

    @property
    def text_only_in_logs(self) -> bool:
        """True when some filter is not in the rollups, so rollup counts are only an upper bound."""
        return self.q is not None or self.source is not None
