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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

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


_TYPE_NAMES = {type(None): "null", bool: "bool", float: "double", str: "string", datetime: "date",
               list: "array", tuple: "array", dict: "object"}


def type_name(value: Any) -> str:
    """The BSON-ish type name of a parsed value (as `$type` spells them)."""
    kind = type(value)
    if kind is int:
        return "int" if -(2 ** 31) <= value < 2 ** 31 else "long"
    name = _TYPE_NAMES.get(kind)
    if name is not None:
        return name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2 ** 31) <= value < 2 ** 31 else "long"
    for base, base_name in _TYPE_NAMES.items():  # subclasses (an OrderedDict, a str enum)
        if isinstance(value, base):
            return base_name
    return kind.__name__


def _usable(path: str) -> bool:
    return len(path) <= MAX_PATH and SEP not in path


def tally_fields(docs: Iterable[dict[str, Any]]) -> FieldTally:
    """Per (app, dotted path), the types of the values the documents' `fields` hold there.

    Hot (every stored record goes through it). Most records of an app share a shape: the same
    keys, in the same order, with values of the same types. A flat shape (no nested object, no
    odd type) is read once per batch (`_flat_plan`) and each of its records only counted: its
    keys and value types make the shape, and its integers are checked to fit int32 (past it the
    walk names them `long`). Other records are walked (`_walk`); both give the same tally."""
    shapes: dict[tuple[Any, ...], int] = {}
    plans: dict[tuple[Any, ...], _FlatPlan | None] = {}
    walked: list[dict[str, Any]] = []
    for doc in docs:
        fields = doc.get("fields")
        if not fields or type(fields) is not dict:
            if fields and isinstance(fields, dict):
                walked.append(doc)  # a dict subclass: no shape of its own
            continue
        shape = (doc.get("app"), tuple(fields), tuple(map(type, fields.values())))
        plan = plans.get(shape, _UNSEEN)
        if plan is _UNSEEN:
            plan = plans[shape] = _flat_plan(shape[1], shape[2])
        if plan is None:
            walked.append(doc)
            continue
        if plan.ints is not None:
            ints = plan.ints(fields)
            if min(ints) < _INT32_MIN or max(ints) > _INT32_MAX:
                walked.append(doc)
                continue
        shapes[shape] = shapes.get(shape, 0) + 1
    counts = _walk(walked)
    for shape, n in shapes.items():
        app = str(shape[0] or "")
        for path, name in plans[shape].leaves:  # type: ignore[union-attr]  # counted shapes have a plan
            key = (app, path, name)
            counts[key] = counts.get(key, 0) + n
    out: FieldTally = {}
    for (app, path, name), n in counts.items():
        out.setdefault((app, path), Counter())[name] = n
    return out


class _FlatPlan(NamedTuple):
    leaves: list[tuple[str, str]]                 # (path, type name) of each counted key
    ints: Callable[[dict[str, Any]], tuple[Any, ...]] | None  # the integer values, to check their range


_UNSEEN = object()
_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_FLAT_TYPES = {str: "string", float: "double", bool: "bool", type(None): "null", datetime: "date", list: "array"}


def _flat_plan(keys: tuple[str, ...], kinds: tuple[type, ...]) -> _FlatPlan | None:
    """What a record of this shape adds to the tally, or None when it must be walked."""
    if len(keys) > MAX_LEAVES:
        return None
    leaves, ints = [], []
    for key, kind in zip(keys, kinds, strict=True):
        if not (key and _usable(key)):
            continue  # not catalogued, as in the walk
        if kind is int:
            ints.append(key)
            leaves.append((key, "int"))
        elif kind in _FLAT_TYPES:
            leaves.append((key, _FLAT_TYPES[kind]))
        else:
            return None  # an object (walked into), a tuple, a subclass: the walk names it
    # itemgetter gives a tuple for two keys or more: one key is asked for twice to get one too
    getter = itemgetter(*ints) if len(ints) > 1 else itemgetter(ints[0], ints[0]) if ints else None
    return _FlatPlan(leaves, getter)


def _walk(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
    """The records' leaves counted per (app, path, type name), walking nested objects; each
    path's checks are made once per batch (`usable`)."""
    counts: dict[tuple[str, str, str], int] = {}
    usable: dict[str, bool] = {}
    for doc in docs:
        fields = doc["fields"]
        app = str(doc.get("app") or "")
        leaves = 0
        stack: list[tuple[str, dict[str, Any], int]] = [("", fields, 1)]
        while stack and leaves < MAX_LEAVES:
            prefix, obj, depth = stack.pop()
            for key, value in obj.items():
                path = prefix + key if prefix else key
                ok = usable.get(path)
                if ok is None:
                    ok = usable[path] = bool(key) and _usable(path)
                if not ok:
                    continue
                if isinstance(value, dict) and value and depth < MAX_DEPTH:
                    stack.append((path + ".", value, depth + 1))
                    continue
                tally_key = (app, path, type_name(value))
                counts[tally_key] = counts.get(tally_key, 0) + 1
                leaves += 1
                if leaves >= MAX_LEAVES:
                    break
    return counts


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
