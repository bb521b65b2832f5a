"""The query tree: what `common.query.parse` returns, and what a planner walks.

Every node carries `pos`, the 0-based character index in the query text where it
starts, so a planner can point at the clause it cannot serve. Field names are
already resolved to the stored document's paths: `host`, `app`, `source`,
`level` and `message` stay as they are, any other name becomes `fields.<name>`
(dotted for nesting), and a bare term or phrase is a `Text` on `message`.
Values stay strings: what a value that looks like a number or a time compares
against is the planner's decision (see `webui.queries.plan`).

    Node
    ├── Text      field contains / equals a literal (bare words and "phrases" too)
    ├── Wildcard  field matches a pattern with * and ? (`regex`: the anchored pattern)
    ├── Regex     field matches /pattern/ (already compiled under RE2)
    ├── Exists    field:*  or  _exists_:field
    ├── Compare   field>value, field>=value, field<value, field<=value, field:>=value
    ├── Range     field:[a TO b], field:{a TO b} (either bound may be *, brackets may mix)
    ├── All       a lone *: every record
    ├── Not       NOT x, -x
    ├── And       x AND y, x y
    └── Or        x OR y
"""

from __future__ import annotations

from dataclasses import dataclass

TOP_LEVEL = ("host", "app", "source", "level", "message")


@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class Text(Node):
    field: str
    value: str
    phrase: bool = False  # written in quotes: literal, whatever it holds


@dataclass(frozen=True)
class Wildcard(Node):
    field: str
    value: str   # as typed (escapes resolved, wildcards kept)
    regex: str   # the same as a Python/PCRE/RE2 pattern, anchored at both ends


@dataclass(frozen=True)
class Regex(Node):
    field: str
    pattern: str


@dataclass(frozen=True)
class Exists(Node):
    field: str


@dataclass(frozen=True)
class Compare(Node):
    field: str
    op: str  # one of > >= < <=
    value: str


@dataclass(frozen=True)
class Range(Node):
    field: str
    low: str | None   # None: unbounded (*)
    high: str | None
    include_low: bool
    include_high: bool


@dataclass(frozen=True)
class All(Node):
    pass


@dataclass(frozen=True)
class Not(Node):
    item: Node


@dataclass(frozen=True)
class And(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Query:
    """A parsed query: its text and its tree."""

    text: str
    root: Node


def field_path(name: str) -> str:
    """The stored path a field name in a query means."""
    if name in TOP_LEVEL:
        return name
    if name.startswith("fields."):
        return name
    return f"fields.{name}"
