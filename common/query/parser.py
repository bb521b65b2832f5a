"""`parse(text) -> Query`: the query language, parsed by lark from the grammar below.

Why lark and not luqum. luqum (a Lucene parser on PLY) has the right tree and
visitor, and its shape is the model here (`tree.py` is a visitor-friendly tree),
but it does not parse what operators type in this language: `status>=500`
lexes as one word (its terms may hold `>`), so comparisons would need string
surgery before the parser; its errors carry the position only inside the
message text; and PLY's parser is not thread-safe (luqum wraps it in a
thread-local), while the web UI parses on many threads. lark (well kept, no
dependencies) takes a grammar that says exactly this language in thirty lines:
an LALR(1) parser, so no recursion while parsing, errors that carry the
position as a number, and one parser object shared by every thread.

Precedence, lowest first: `OR`, then `AND` (explicit or implicit: `a b` is
`a AND b`), then `NOT` / `-` / `+`; parentheses group. So
`level:error host:web-* OR host:db-*` is `(level:error AND host:web-*) OR host:db-*`.

Plain words keep their old meaning: a bare word is a case-insensitive
substring of `message`, as the whole `q` was before. A multi-word bare query,
`q=payment timeout`, is the words ANDed (each a substring, in any order), so
an old permalink finds every record it found before (the words were then one
substring), and the records with the words apart too; `"payment timeout"` in
quotes is the old exact meaning.

Bounds, so a hostile query is a `QueryError` and not a stack overflow or a
huge filter: MAX_LENGTH characters, MAX_DEPTH nested groups/negations,
MAX_CLAUSES leaf clauses.
"""

from __future__ import annotations

import re

import re2
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from common.query.tree import (
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

MAX_LENGTH = 1000
MAX_DEPTH = 16
MAX_CLAUSES = 64
MAX_REGEX = 200

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND? unary)*
?unary: _NOT unary         -> not_
      | MINUS unary        -> not_
      | PLUS unary
      | primary
?primary: LPAR or_expr _RPAR    -> group
        | TERM _COLON fvalue    -> field
        | TERM CMP bound        -> compare
        | value

?fvalue: value
       | CMP bound              -> fcompare
       | range
       | LPAR f_or _RPAR        -> fgroup
?f_or: f_and (_OR f_and)*
?f_and: f_unary (_AND? f_unary)*
?f_unary: _NOT f_unary           -> not_
        | MINUS f_unary          -> not_
        | PLUS f_unary
        | LPAR f_or _RPAR        -> group
        | value

value: TERM | PHRASE | REGEX
range: RLOW bound _TO bound RHIGH
bound: MINUS? TERM | PHRASE

_OR.2: /OR(?![^\s:()\[\]{}"\\<>])/ | "||"
_AND.2: /AND(?![^\s:()\[\]{}"\\<>])/ | "&&"
_NOT.2: /NOT(?![^\s:()\[\]{}"\\<>])/
_TO.2: /TO(?![^\s:()\[\]{}"\\<>])/
MINUS: "-"
PLUS: "+"
LPAR: "("
_RPAR: ")"
_COLON: ":"
CMP: ">=" | "<=" | ">" | "<"
RLOW: "[" | "{"
RHIGH: "]" | "}"
PHRASE: /"(?:[^"\\]|\\.)*"/
REGEX.3: /\/(?:[^\/\\]|\\.)+\/(?=[\s)]|$)/
TERM: TERM_HEAD TERM_CHAR*
TERM_HEAD: /(?!(?:AND|OR)(?![^\s:()\[\]{}"\\<>]))(?:[^\s:()\[\]{}"\\+\-<>!]|\\.)/
TERM_CHAR: /[^\s:()\[\]{}"\\<>]|\\.|(?<=T\d\d):\d\d(?::\d\d)?/

%ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)
_ESCAPE = re.compile(r"\\(.)", re.S)
_WILD = re.compile(r"\\.|[*?]", re.S)


class QueryError(ValueError):
    """A query that cannot be used: `position` is the 0-based character index of the culprit."""

    def __init__(self, message: str, position: int):
        self.message, self.position = message, position
        super().__init__(f"{message} (at character {position + 1})")


def parse(text: str) -> Query:
    """The tree of `text`, or `QueryError` saying what is wrong and where."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"the query is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if "\x00" in text:
        raise QueryError("the query holds a NUL character", text.index("\x00"))
    if not text.strip():
        raise QueryError("the query is empty", 0)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    _check_shape(tree)
    root = _Builder().build(tree, None)
    return Query(text=text, root=root)


def _syntax_error(exc: UnexpectedInput, text: str) -> QueryError:
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return QueryError(_eof_reason(text), len(text))
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        return QueryError(f"unexpected {_shown(tok)}", tok.start_pos or 0)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = text[pos]
        if char == '"':
            return QueryError("unterminated quoted phrase", pos)
        if char == "\\":
            return QueryError("a backslash must escape a character", pos)
        return QueryError(f"unexpected character {char!r}", pos)
    return QueryError("cannot parse the query", getattr(exc, "pos_in_stream", 0) or 0)


def _eof_reason(text: str) -> str:
    if text.count("(") > text.count(")"):
        return "unexpected end of query: a parenthesis is not closed"
    return "unexpected end of query"


def _shown(tok: Token) -> str:
    names = {"_RPAR": "')'", "RHIGH": f"{str(tok)!r}", "_COLON": "':'", "_TO": "TO", "_OR": "OR",
             "_AND": "AND", "_NOT": "NOT"}
    return names.get(tok.type, repr(str(tok)))


def _check_shape(tree: Tree) -> None:
    """Depth and clause count without recursion (the tree of a hostile query may be deep)."""
    stack: list[tuple[Tree | Token, int]] = [(tree, 0)]
    clauses: list[int] = []
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in ("group", "fgroup", "not_"):
            depth += 1
            if depth > MAX_DEPTH:
                raise QueryError(f"the query nests groups and negations more than {MAX_DEPTH} deep", _start(node))
        if node.data in ("field", "compare", "value", "fcompare", "range"):
            clauses.append(_start(node))
        stack.extend((child, depth) for child in node.children)
    if len(clauses) > MAX_CLAUSES:
        raise QueryError(f"the query has more than {MAX_CLAUSES} clauses", sorted(clauses)[MAX_CLAUSES])


def _start(node: Tree | Token) -> int:
    if isinstance(node, Tree):
        return node.meta.start_pos if not node.meta.empty else _start(node.children[0])
    return node.start_pos or 0


def _unescape(raw: str) -> str:
    return _ESCAPE.sub(r"\1", raw)


def _phrase(tok: Token) -> str:
    return _unescape(str(tok)[1:-1])


class _Builder:
    """lark's parse tree -> `common.query.tree`, resolving field names and values (depth is bounded)."""

    def build(self, node: Tree | Token, field: str | None) -> Node:
        kind = node.data if isinstance(node, Tree) else "token"
        method = getattr(self, f"_{kind}", None)
        if method is None:  # pragma: no cover - the grammar has no other rule
            raise QueryError("cannot parse the query", _start(node))
        return method(node, field)

    def _or_expr(self, node: Tree, field: str | None) -> Node:
        return Or(_start(node), tuple(self.build(c, field) for c in node.children))

    _f_or = _or_expr

    def _and_expr(self, node: Tree, field: str | None) -> Node:
        return And(_start(node), tuple(self.build(c, field) for c in node.children))

    _f_and = _and_expr

    def _not_(self, node: Tree, field: str | None) -> Node:
        return Not(_start(node), self.build(node.children[-1], field))

    def _unary(self, node: Tree, field: str | None) -> Node:  # PLUS x: x is required, as it is anyway
        return self.build(node.children[-1], field)

    _f_unary = _unary

    def _group(self, node: Tree, field: str | None) -> Node:
        return self.build(node.children[1], field)

    def _fgroup(self, node: Tree, field: str | None) -> Node:
        return self.build(node.children[1], field)

    def _field(self, node: Tree, field: str | None) -> Node:
        name_tok, value = node.children
        name = _unescape(str(name_tok))
        if name == "_exists_":
            return self._exists(value, name_tok.start_pos)
        return self.build(value, _checked_field(name, name_tok.start_pos))

    def _exists(self, value: Tree | Token, pos: int) -> Node:
        if isinstance(value, Tree) and value.data == "value" and value.children[0].type in ("TERM", "PHRASE"):
            tok = value.children[0]
            name = _phrase(tok) if tok.type == "PHRASE" else _unescape(str(tok))
            return Exists(pos, _checked_field(name, tok.start_pos))
        raise QueryError("_exists_ takes a field name: _exists_:status", _start(value))

    def _compare(self, node: Tree, field: str | None) -> Node:
        name_tok, op, bound = node.children
        path = _checked_field(_unescape(str(name_tok)), name_tok.start_pos)
        return Compare(name_tok.start_pos, path, str(op), self._bound(bound))

    def _fcompare(self, node: Tree, field: str | None) -> Node:
        op, bound = node.children
        return Compare(op.start_pos, _need(field, op), str(op), self._bound(bound))

    def _range(self, node: Tree, field: str | None) -> Node:
        low_tok, low, high, high_tok = node.children
        lo, hi = self._bound(low), self._bound(high)
        return Range(low_tok.start_pos, _need(field, low_tok), None if lo == "*" else lo,
                     None if hi == "*" else hi, str(low_tok) == "[", str(high_tok) == "]")

    def _bound(self, node: Tree) -> str:
        toks = node.children
        if toks[0].type == "PHRASE":
            return _phrase(toks[0])
        return "".join(_unescape(str(t)) for t in toks)  # "-" then the number

    def _value(self, node: Tree, field: str | None) -> Node:
        tok: Token = node.children[0]
        pos = tok.start_pos or 0
        path = field or "message"
        if tok.type == "PHRASE":
            return Text(pos, path, _phrase(tok), phrase=True)
        if tok.type == "REGEX":
            return Regex(pos, path, _checked_regex(str(tok)[1:-1], pos))
        raw = str(tok)
        if raw == "*":
            return Exists(pos, path) if field else All(pos)
        if not _WILD.search(raw) or all(m.group().startswith("\\") for m in _WILD.finditer(raw)):
            return Text(pos, path, _unescape(raw))
        return Wildcard(pos, path, _unescape(raw), _wildcard_regex(raw))


def _need(field: str | None, tok: Token) -> str:
    if field is None:  # pragma: no cover - the grammar only allows these after field:
        raise QueryError("a comparison or range needs a field: status:[500 TO 599]", tok.start_pos or 0)
    return field


def _checked_field(name: str, pos: int) -> str:
    parts = name.split(".")
    if not name or any(not p for p in parts) or any(p.startswith("$") for p in parts) or len(name) > 200:
        raise QueryError(f"not a field name: {name[:40]!r} (dotted names, no empty part, none starting with $)",
                         pos)
    if name.startswith("fields.") and len(parts) < 2:
        raise QueryError("fields. needs a name after it", pos)
    return field_path(name)


def _checked_regex(pattern: str, pos: int) -> str:
    pattern = pattern.replace("\\/", "/")
    if len(pattern) > MAX_REGEX:
        raise QueryError(f"the regular expression is longer than {MAX_REGEX} characters", pos)
    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise QueryError(f"not a regular expression RE2 accepts: {reason}", pos) from None
    return pattern


def _wildcard_regex(raw: str) -> str:
    out, last = ["^"], 0
    for m in _WILD.finditer(raw):
        out.append(re.escape(raw[last:m.start()]))
        token = m.group()
        out.append(re.escape(token[1]) if token.startswith("\\") else (".*" if token == "*" else "."))
        last = m.end()
    out.append(re.escape(raw[last:]))
    out.append("$")
    return "".join(out)
