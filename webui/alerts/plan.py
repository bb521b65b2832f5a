"""Which part of a rule's query the minute rollups can count.

The rollups (`consumer.tally`) hold exact record counts per (minute, host, app, level). A
query that says nothing but `host:X`, `app:Y` and `level:Z` terms joined by AND is counted
from them; anything else (text, fields, wildcards, OR, NOT, groups) goes to `logs` through
`webui.queries.logs.filter_match`, which alone knows the query language. The split is
deliberately conservative: a query it does not fully understand is passed on whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.record import LEVELS

_TERM = re.compile(r"^(host|app|level):([A-Za-z0-9_.\-@+]+)$")
_SPECIAL = re.compile(r'["()\[\]{}/\\*?<>=~^!]')
_OPERATORS = {"OR", "NOT", "TO", "||", "&&"}


@dataclass(frozen=True)
class CountPlan:
    host: str | None = None
    app: str | None = None
    levels: tuple[str, ...] = ()
    rest: str | None = None  # what only `logs` can answer (the query language), None: rollups suffice

    @property
    def from_rollups(self) -> bool:
        return self.rest is None


def plan_query(text: str | None) -> CountPlan:
    """`text` split into what the rollups hold and the rest."""
    if text is None or not text.strip():
        return CountPlan()
    whole = CountPlan(rest=text)
    if _SPECIAL.search(text):
        return whole
    found: dict[str, str] = {}
    rest: list[str] = []
    for token in text.split():
        if token in _OPERATORS or token.startswith("-") or token.startswith("+"):
            return whole
        if token == "AND":
            continue
        match = _TERM.match(token)
        if not match:
            rest.append(token)
            continue
        key, value = match.groups()
        if key in found:
            return whole  # `host:a host:b` matches nothing; let the language say so
        if key == "level" and value.lower() not in LEVELS:
            return whole
        found[key] = value.lower() if key == "level" else value
    return CountPlan(host=found.get("host"), app=found.get("app"),
                     levels=(found["level"],) if "level" in found else (),
                     rest=" ".join(rest) if rest else None)
