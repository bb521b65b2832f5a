"""How a rule's query is read: from the minute rollups when they answer it exactly, else from `logs`.

The rollups (`consumer.tally`) hold exact record counts per (minute, host, app, level). The
query planner (`webui.queries.plan`) says when a query constrains nothing else
(`rollup_exact`: `level:error app:payments`, `host:web-0*`, `-level:debug`) and tests a rollup's
(host, app, level) against it (`matches_rollup`); any other query is counted in `logs` through
`webui.queries.logs.filter_match`, which alone turns the query language into a filter.
"""

from __future__ import annotations

from datetime import datetime

from webui.queries.filters import Filters
from webui.queries.plan import plan_text


def query_filters(query: str | None, since: datetime, until: datetime) -> Filters:
    """The reads' `Filters` for `query`, its top-level host/app/level folded in (for the indexes)."""
    flt = Filters(since=since, until=until, q=query or None)
    return flt.resolved()


def from_rollups(query: str | None) -> bool:
    """Whether the rollups count `query` exactly (no query: every record, which they do)."""
    return not query or plan_text(query).rollup_exact


def host_and_app(query: str | None) -> tuple[str | None, str | None]:
    """The single host and app every match has, if the query pins them (for a rule's labels)."""
    if not query:
        return None, None
    plan = plan_text(query)
    return plan.host, plan.app
