"""What a read asks for: `Filters` (a time window and the values records must have) and
`Cursor` (where the previous page ended).

The query layer's own types, built by whoever understands the request
(`webui.params` from the query string). Every value stays plain (a string, a
datetime, a tuple of levels); `q` is the query language's text, which
`queries.plan` turns into a MongoDB filter (`plan_text`, remembered per text);
`queries.logs.filter_match` alone builds the `$match`, so no value can become an
operator or an unescaped regex. `resolved()` folds what `q` says about host, app
and level (`level:error host:web-01`) into those fields, so the indexes and the
rollups serve it as if the filters had been given apart.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from webui.queries.plan import Capabilities, Plan, plan_text

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
    capabilities: Capabilities = Capabilities()

    @property
    def plan(self) -> Plan | None:
        """`q` planned (QueryError if it does not parse: `webui.params` checks it first)."""
        return None if self.q is None else plan_text(self.q, self.capabilities)

    @property
    def text_only_in_logs(self) -> bool:
        """True when some filter is not in the rollups, so rollup counts are only an upper bound.

        A `q` on host, app and level alone (`level:error host:web-0*`) is in the rollups (`matches_rollup`)."""
        plan = self.plan
        return self.source is not None or (plan is not None and not plan.rollup_exact)

    def field_lead(self) -> tuple[str, tuple[dict[str, Any], ...]] | None:
        """An indexed parsed field `q` constrains at the top level, and the conditions to lead with."""
        plan = self.plan
        if plan is None:
            return None
        caps = self.capabilities
        return next(((path, leads) for path, leads, equality in plan.field_leads
                     if caps.indexed(path) and (equality or caps.index_ranges)), None)

    def resolved(self, capabilities: Capabilities | None = None) -> Filters:
        """These filters with `q`'s top-level host/app/level equalities folded into host, app and levels
        (where those are not given already), planned for `capabilities`; `q` itself still applies whole."""
        flt = self if capabilities is None else replace(self, capabilities=capabilities)
        plan = flt.plan
        if plan is None:
            return flt
        changes: dict[str, object] = {}
        if flt.host is None and plan.host is not None:
            changes["host"] = plan.host
        if flt.app is None and plan.app is not None:
            changes["app"] = plan.app
        if not flt.levels and plan.levels and NO_LEVEL not in plan.levels:
            changes["levels"] = tuple(sorted(plan.levels))
        return replace(flt, **changes) if changes else flt
