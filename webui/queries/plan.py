"""The query planner: a parsed query (`common.query`) and the server's capabilities -> a MongoDB filter.

A pure function, `plan(query, capabilities) -> Plan`, tested without a server.
`Plan.match` is the whole query as one filter; the reads put it after their
leading `$match` (the time window on the cheapest index: `search`), so it
narrows the records an index yields and never widens the scan. What the reads
can lean on besides (`Filters` folds it in, see `webui.queries.filters`):

* `host`, `app`, `levels`: equalities every record must meet (top-level
  `AND` clauses, `level:(error OR critical)` as a set). Folded into the
  filters, they pick the compound indexes (host, ts), (app, ts), (level, ts)
  for the leading `$match` and the rollups' counts for the slices.
* `host_prefix` / `app_prefix`: a top-level `host:web-0*` as the anchored
  regex `^web\\-0`, which a B-tree index serves as a range of keys.
* `rollup_exact`: the query constrains only host, app and level (equality,
  sets, wildcards, regexes, negations of those): `rollup_test` evaluates it on a
  rollup's (host, app, level), so the histogram stays on the rollups and the
  slices know exactly how many records they hold.
* `text_search`: on a server with a text index on `logs` (`Capabilities`), the
  top-level plain words as a `$text` search for the leading `$match`. Then those
  words match as MongoDB's text index splits words (whole, stemmed words); the
  substring regex still applies too. SecantusDB has no text index, so there
  every word is a substring.

What each leaf means (the README says the same to operators):

* `message` (and bare terms, "phrases", wildcards): case-insensitive substring.
* `host`, `app`, `source`: exact, case-sensitive; `level` lower-cased (stored so).
* `fields.x:v`: equal to `v`; a value that looks like a number (`500`, `-4.5`)
  matches the number stored as a number and the string as typed (`$in`); `true`
  and `false` likewise match the booleans and the strings.
* comparisons and ranges with a number-looking value compare numerically
  against numbers, and against numeric strings (`^-?digits(.digits)?$`) through
  `$expr` (`$toDouble`, guarded by `$regexMatch` so a non-numeric string never
  errors); a time-looking value (`2026-01-31`, `2026-01-31T12:00:00Z`) compares
  against stored datetimes and ISO strings; anything else compares as a string.
* wildcards: anchored on fields (`host:web-*` is `^web\\-.*$`), unanchored
  substring on `message`; regexes: passed through as `$regex` after RE2 accepted
  them (RE2's syntax is a subset of the server's PCRE without backtracking
  constructs), under the reads' maxTimeMS like every command.
* `NOT x`: `$nor`, so records without the field match `-status:500` (Lucene's meaning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import re2

from common.query import All, And, Compare, Exists, Node, Not, Or, Query, Range, Regex, Text, Wildcard, parse

NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
NUMERIC_STRING = r"^-?[0-9]+(\.[0-9]+)?$"  # the strings $toDouble surely takes
TIME = re.compile(r"^\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?$")
DIMENSIONS = ("host", "app", "level")
EXACT = ("host", "app", "source")
_OPS = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
_NOTHING: dict[str, Any] = {"_id": {"$in": []}}
_WORD = re.compile(r"^\w+$")


@dataclass(frozen=True)
class Capabilities:
    """What the server offers beyond standard queries, probed by the reader (`LogReader.capabilities`)."""

    text_index: bool = False
    indexed_fields: frozenset[str] = frozenset()  # paths with a (path, ts) index: mongo.field_indexes
    wildcard_index: bool = False                   # fields.$** exists: every parsed field is indexed
    index_ranges: bool = False  # the server scans a range on an index's first key (SecantusDB: equality only)

    def indexed(self, path: str) -> bool:
        return path in self.indexed_fields or (self.wildcard_index and path.startswith("fields."))


@dataclass(frozen=True)
class Plan:
    match: dict[str, Any]
    root: Node = field(repr=False)
    rollup_exact: bool = False
    host: str | None = None
    app: str | None = None
    levels: frozenset[str] | None = None
    host_prefix: str | None = None
    app_prefix: str | None = None
    text_search: str | None = None
    field_leads: tuple[tuple[str, tuple[dict[str, Any], ...], bool], ...] = ()  # (path, conditions, equality)

    host_clauses: tuple[Node, ...] = field(default=(), repr=False)

    def rollup_test(self, host: str | None, app: str | None, level: str | None) -> bool:
        """Whether a rollup of (host, app, level) counts records this query matches (for rollup_exact plans)."""
        return _test(self.root, {"host": host, "app": app, "level": level})

    def host_test(self, host: str) -> bool:
        """Whether the top-level clauses on host alone (`host:web-0*`, `host:/web-0[1-3]/`) let `host` through."""
        return all(_test(c, {"host": host}) for c in self.host_clauses)


@lru_cache(maxsize=1024)
def plan_text(text: str, capabilities: Capabilities = Capabilities()) -> Plan:
    """`plan(parse(text))`, remembered: every read of a request (and the next page's) plans the same `q`."""
    return plan(parse(text), capabilities)


def plan(query: Query, capabilities: Capabilities = Capabilities()) -> Plan:
    root = query.root
    conjuncts = root.items if isinstance(root, And) else (root,)
    levels: set[str] | None = None
    single: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for clause in conjuncts:
        values = _equality_set(clause)
        if values is not None:
            dim, vals = values
            if dim == "level":
                levels = vals if levels is None else levels & vals
            elif len(vals) == 1:
                single.setdefault(dim, next(iter(vals)))
        if isinstance(clause, Wildcard) and clause.field in ("host", "app"):
            prefix = _literal_prefix(clause.value)
            if prefix:
                prefixes.setdefault(clause.field, "^" + re.escape(prefix))
    words = [c.value for c in conjuncts if isinstance(c, Text) and c.field == "message" and not c.phrase
             and _WORD.match(c.value)]
    text_search = " ".join(f'"{w}"' for w in words) if capabilities.text_index and words else None
    leads = tuple((c.field, *lead) for c in conjuncts if (lead := _field_lead(c)) is not None)
    return Plan(match=_filter(root), root=root, rollup_exact=_on_dimensions(root), host=single.get("host"),
                app=single.get("app"), levels=None if levels is None else frozenset(levels),
                host_prefix=prefixes.get("host"), app_prefix=prefixes.get("app"), text_search=text_search,
                field_leads=leads, host_clauses=tuple(c for c in conjuncts if _only_on(c, "host")))


def _only_on(node: Node, dim: str) -> bool:
    """`node` constrains `dim` alone, and only with what `_test` evaluates."""
    return _on_dimensions(node) and {getattr(n, "field", dim) for n in _leaves(node)} == {dim}


def _leaves(node: Node) -> list[Node]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (And, Or)):
            stack.extend(n.items)
        elif isinstance(n, Not):
            stack.append(n.item)
        else:
            out.append(n)
    return out


def _field_lead(node: Node) -> tuple[tuple[dict[str, Any], ...], bool] | None:
    """Conditions on one parsed field whose union holds every record `node` matches, each one an
    index range on (field, ts): what a read may lead with when the field is indexed; and whether
    they are all equalities (a server that plans only those still uses the index)."""
    if not getattr(node, "field", "").startswith("fields."):
        return None
    path = node.field
    if isinstance(node, Text):
        cond = _text(node)[path]
        values = cond["$in"] if isinstance(cond, dict) else [cond]
        return tuple({path: v} for v in values), True
    if isinstance(node, Wildcard):
        prefix = _literal_prefix(node.value)
        return (({path: {"$regex": "^" + re.escape(prefix)}},), False) if prefix else None
    if isinstance(node, (Compare, Range)):
        if isinstance(node, Compare):
            bounds = [(_OPS[node.op], node.value)]
        else:
            bounds = [(op, v) for op, v in (("$gte" if node.include_low else "$gt", node.low),
                                            ("$lte" if node.include_high else "$lt", node.high)) if v is not None]
        if not bounds:
            return None
        values = [v for _, v in bounds]
        if all(NUMBER.match(v) for v in values):
            # numbers in range, and the strings that may be numeric ones (they start with - or a digit)
            return ({path: {op: _number(v) for op, v in bounds}}, {path: {"$gte": "-", "$lt": ":"}}), False
        if all(TIME.match(v) for v in values):
            return ({path: {op: _time(v) for op, v in bounds}}, {path: {op: v for op, v in bounds}}), False
        return ({path: {op: v for op, v in bounds}},), False
    return None


def _equality_set(node: Node) -> tuple[str, set[str]] | None:
    """(dimension, values) when `node` says "host/app/level is one of these"."""
    if isinstance(node, Text) and node.field in DIMENSIONS:
        return node.field, {_dim_value(node.field, node.value)}
    if isinstance(node, Or) and node.items:
        found = [_equality_set(i) for i in node.items]
        dims = {f[0] for f in found if f is not None}
        if None not in found and len(dims) == 1:
            return dims.pop(), set().union(*(f[1] for f in found if f is not None))
    return None


def _dim_value(dim: str, value: str) -> str:
    return value.lower() if dim == "level" else value


def _literal_prefix(value: str) -> str:
    cut = min((i for i in (value.find("*"), value.find("?")) if i >= 0), default=len(value))
    return value[:cut]


def _on_dimensions(node: Node) -> bool:
    """Every leaf of `node` is a host/app/level condition `_test` evaluates (or matches all)."""
    return all(isinstance(n, All) or (isinstance(n, (Text, Wildcard, Regex, Exists)) and n.field in DIMENSIONS)
               for n in _leaves(node))


def _test(node: Node, values: dict[str, str | None]) -> bool:
    if isinstance(node, And):
        return all(_test(i, values) for i in node.items)
    if isinstance(node, Or):
        return any(_test(i, values) for i in node.items)
    if isinstance(node, Not):
        return not _test(node.item, values)
    if isinstance(node, All):
        return True
    value = values.get(getattr(node, "field", ""))
    if isinstance(node, Exists):
        return value is not None
    if value is None:
        return False
    if isinstance(node, Text):
        return value == _dim_value(node.field, node.value)
    if isinstance(node, Wildcard):
        return _compiled(node.regex, node.field == "level").search(value) is not None
    if isinstance(node, Regex):
        return _compiled(node.pattern, False).search(value) is not None
    return False


@lru_cache(maxsize=256)
def _compiled(pattern: str, ignore_case: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False
    return re2.compile(pattern, options)


def _filter(node: Node) -> dict[str, Any]:
    if isinstance(node, And):
        parts = [p for p in (_filter(i) for i in node.items) if p]
        return {} if not parts else parts[0] if len(parts) == 1 else {"$and": parts}
    if isinstance(node, Or):
        parts = [_filter(i) for i in node.items]
        return {} if any(not p for p in parts) else {"$or": parts}
    if isinstance(node, Not):
        inner = _filter(node.item)
        return {"$nor": [inner]} if inner else dict(_NOTHING)
    if isinstance(node, All):
        return {}
    if isinstance(node, Exists):
        return {node.field: {"$exists": True}}
    if isinstance(node, Text):
        return _text(node)
    if isinstance(node, Wildcard):
        if node.field == "message":
            return {"message": {"$regex": node.regex[1:-1], "$options": "i"}}
        if node.field == "level":
            return {"level": {"$regex": node.regex, "$options": "i"}}
        return {node.field: {"$regex": node.regex}}
    if isinstance(node, Regex):
        return {node.field: {"$regex": node.pattern}}
    if isinstance(node, Compare):
        return _compare(node.field, [(_OPS[node.op], node.value)])
    if isinstance(node, Range):
        bounds = []
        if node.low is not None:
            bounds.append(("$gte" if node.include_low else "$gt", node.low))
        if node.high is not None:
            bounds.append(("$lte" if node.include_high else "$lt", node.high))
        return _compare(node.field, bounds) if bounds else {node.field: {"$exists": True}}
    raise TypeError(f"no plan for {type(node).__name__}")  # pragma: no cover - tree.py lists every node


def _text(node: Text) -> dict[str, Any]:
    if node.field == "message":
        return {"message": {"$regex": re.escape(node.value), "$options": "i"}}
    if node.field == "level":
        return {"level": node.value.lower()}
    if node.field in EXACT:
        return {node.field: node.value}
    if NUMBER.match(node.value):
        return {node.field: {"$in": [_number(node.value), node.value]}}
    if node.value in ("true", "false"):
        return {node.field: {"$in": [node.value == "true", node.value]}}
    return {node.field: node.value}


def _compare(path: str, bounds: list[tuple[str, str]]) -> dict[str, Any]:
    """`path` within `bounds`: numerically when every bound looks like a number, as times when they
    look like times, else as strings."""
    values = [v for _, v in bounds]
    if path.startswith("fields.") and all(NUMBER.match(v) for v in values):
        numeric = {path: {op: _number(v) for op, v in bounds}}
        ref = f"${path}"
        checks: list[Any] = [{"$eq": [{"$type": ref}, "string"]},
                             {"$regexMatch": {"input": ref, "regex": NUMERIC_STRING}}]
        checks += [{op: [{"$toDouble": ref}, _number(v)]} for op, v in bounds]
        return {"$or": [numeric, {"$expr": {"$and": checks}}]}
    if all(TIME.match(v) for v in values):
        as_time = {path: {op: _time(v) for op, v in bounds}}
        return {"$or": [as_time, {path: {op: v for op, v in bounds}}]}
    return {path: {op: v for op, v in bounds}}


def _number(value: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        return float(value)


def _time(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
