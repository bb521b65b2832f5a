"""Arrival order's shared contract: where the consumer records it and how a reader reads it.

The consumer (`consumer.store.arrival`, whose docstring argues the design) stamps each stored
record `arrival`, a dense position in storing order, and keeps one state document,
`arrival` `{_id: "logs", n: <last position reserved>, open: {"<first position>": <lease end,
epoch seconds>}}`, of the blocks being inserted. The web UI's tail (`webui.queries.tail`)
reads that document to know how far it may go. Pure: no database here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIELD = "arrival"            # the records' position field (indexed)
STATE_COLLECTION = "arrival"
STATE_ID = "logs"


def frontier(state: Mapping[str, Any] | None, now: float) -> int:
    """The highest position a reader may pass: every record that will ever hold a position at or
    below it is stored already. Below the lowest open block whose lease has not ended, else `n`."""
    if not state:
        return 0
    live = [int(start) for start, until in (state.get("open") or {}).items() if until >= now]
    return min(live) - 1 if live else int(state.get("n", 0))
