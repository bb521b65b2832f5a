"""`ReadHandle`: what every read function is given, the collections it reads and the clock.

The reads run their queries on these pymongo collections; they never open a
client, set a deadline or catch pymongo's errors: `reader.LogReader` does that
around each call, so a read module knows the documents' shapes and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.collection import Collection


@dataclass(frozen=True)
class ReadHandle:
    logs: Collection[dict[str, Any]]
    rollups: Collection[dict[str, Any]]
    hosts: Collection[dict[str, Any]]
    clock: Callable[[], float]
    catalogue: Collection[dict[str, Any]] | None = None  # field_catalogue (the consumer writes it)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)
