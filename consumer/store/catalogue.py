"""The field catalogue: which parsed fields each app's records carry, their types and how often.

One document per (app, dotted path under `fields`) in `field_catalogue`:
`{_id: "<app>\\0<path>", app, field: "req.method", types: {"string": n, "int": n, ...},
count: n, last_seen}` (the contract in shared INTERFACES: the web UI reads it for
`GET /api/fields` and autocompletion).

Cheap per batch: the batch's documents are walked in memory (`tally_fields`,
no I/O), and the totals go out as ONE unordered bulk of `$inc` upserts, one per
(app, path) the batch saw, however many records carried it. Counts are a
popularity guide, not an audit: only the records an insert really stored are
counted, so a redelivered message is not counted twice, and a batch whose
insert succeeded but whose catalogue update was lost (a crash in between) is
not counted at all.

Bounded, so hostile JSON cannot blow it up: at most MAX_LEAVES leaves are read
per record and MAX_DEPTH levels deep (deeper objects count as "object"), paths
longer than MAX_PATH characters are skipped, and an app gets at most
MAX_PATHS_PER_APP paths: a path the catalogue does not know yet is added only
while the app has fewer (the known paths are read once per app and kept).
A failed catalogue update is logged and dropped: it never holds up storing logs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from consumer.store.indexes import ensure_indexes

log = logging.getLogger(__name__)

MAX_PATHS_PER_APP = 1000
MAX_LEAVES = 200
MAX_DEPTH = 8
MAX_PATH = 200
CATALOGUE_INDEXES = [IndexModel([("app", ASCENDING), ("count", DESCENDING)], name="app_count")]
SEP = "\x00"

FieldTally = dict[tuple[str, str], Counter]  # (app, path) -> type name -> records


def type_name(value: Any) -> str:
    """The BSON-ish type name of a parsed value (as `$type` spells them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2 ** 31) <= value < 2 ** 31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def tally_fields(docs: Iterable[dict[str, Any]]) -> FieldTally:
    """Per (app, dotted path), the types of the values the documents' `fields` hold there."""
    out: FieldTally = {}
    for doc in docs:
        fields = doc.get("fields")
        if not isinstance(fields, dict) or not fields:
            continue
        app = str(doc.get("app") or "")
        leaves = 0
        stack: list[tuple[str, dict[str, Any], int]] = [("", fields, 1)]
        while stack and leaves < MAX_LEAVES:
            prefix, obj, depth = stack.pop()
            for key, value in obj.items():
                path = f"{prefix}{key}"
                if len(path) > MAX_PATH or not key or SEP in path:
                    continue
                if isinstance(value, dict) and value and depth < MAX_DEPTH:
                    stack.append((path + ".", value, depth + 1))
                    continue
                out.setdefault((app, path), Counter())[type_name(value)] += 1
                leaves += 1
                if leaves >= MAX_LEAVES:
                    break
    return out


class FieldCatalogue:
    """Keeps `field_catalogue` up to date from the batches the consumer stores."""

    def __init__(self, collection: Collection[dict[str, Any]]):
        self.collection = collection
        self.known: dict[str, set[str]] = {}  # app -> the paths the catalogue holds

    def init(self) -> None:
        ensure_indexes(self.collection, CATALOGUE_INDEXES)

    def record(self, docs: Iterable[dict[str, Any]]) -> int:
        """Count the fields of `docs` (the records this batch stored); the number of paths updated."""
        tallied = tally_fields(docs)
        if not tallied:
            return 0
        try:
            return self._upsert(tallied)
        except PyMongoError as exc:
            log.warning("field catalogue not updated (%s); the logs are stored", exc)
            return 0

    def _upsert(self, tallied: FieldTally) -> int:
        now = datetime.now(UTC)
        ops = []
        for (app, path), types in tallied.items():
            known = self._known(app)
            if path not in known:
                if len(known) >= MAX_PATHS_PER_APP:
                    continue
                known.add(path)
            inc: dict[str, int] = {"count": sum(types.values())}
            inc.update({f"types.{name}": n for name, n in types.items()})
            ops.append(UpdateOne({"_id": f"{app}{SEP}{path}"},
                                 {"$inc": inc, "$set": {"last_seen": now},
                                  "$setOnInsert": {"app": app, "field": path}}, upsert=True))
        if ops:
            self.collection.bulk_write(ops, ordered=False)
        return len(ops)

    def _known(self, app: str) -> set[str]:
        known = self.known.get(app)
        if known is None:
            cursor = self.collection.find({"app": app}, {"_id": 0, "field": 1}).limit(MAX_PATHS_PER_APP + 1)
            known = self.known[app] = {d["field"] for d in cursor if "field" in d}
        return known
