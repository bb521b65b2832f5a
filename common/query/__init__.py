"""The query language of `q` (search, histogram, export, tail, alert rules): parse it into a tree.

Pure: no database, no web. `parse(text)` gives a `Query` (`tree.py` draws the
nodes) or raises `QueryError(message, position)`. A backend plans the tree
into its own filter (`webui.queries.plan` for MongoDB); `parser.py` says why
lark, the precedence and what plain words mean.
"""

from common.query.parser import MAX_CLAUSES, MAX_DEPTH, MAX_LENGTH, QueryError, parse
from common.query.tree import (
    TOP_LEVEL,
    All,
    And,
    Compare,
    Exists,
    Node,
    Not,
    Or,
    Query,
    Range,
    Regex,
    Text,
    Wildcard,
    field_path,
)

__all__ = ["MAX_CLAUSES", "MAX_DEPTH", "MAX_LENGTH", "TOP_LEVEL", "All", "And", "Compare", "Exists", "Node",
           "Not", "Or", "Query", "QueryError", "Range", "Regex", "Text", "Wildcard", "field_path", "parse"]
