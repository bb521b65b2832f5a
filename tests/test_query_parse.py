"""The query language's parser (`common.query`): the tree of every construct, the precedence,
and every error with its position; bounds against hostile queries."""

from __future__ import annotations

import pytest

from common.query import (
    MAX_CLAUSES,
    MAX_DEPTH,
    MAX_LENGTH,
    All,
    And,
    Compare,
    Exists,
    Not,
    Or,
    QueryError,
    Range,
    Regex,
    Text,
    Wildcard,
    parse,
)


def root(text):
    return parse(text).root


def test_bare_words_and_phrases_are_text_on_message():
    assert root("timeout") == Text(0, "message", "timeout")
    assert root('"payment provider timeout"') == Text(0, "message", "payment provider timeout", phrase=True)
    assert root("payment timeout") == And(0, (Text(0, "message", "payment"), Text(8, "message", "timeout")))
    assert root(r'"say \"hi\""') == Text(0, "message", 'say "hi"', phrase=True)
    assert root(r"a\:b") == Text(0, "message", "a:b")


def test_field_names_resolve_to_stored_paths():
    assert [root(f"{name}:x").field for name in ("host", "app", "source", "level", "message")] == [
        "host", "app", "source", "level", "message"]
    assert root("status:500") == Text(7, "fields.status", "500")
    assert root("req.method:GET").field == "fields.req.method"
    assert root("fields.req.method:GET").field == "fields.req.method"


def test_values_wildcards_quotes_and_existence():
    assert root("host:web-*") == Wildcard(5, "host", "web-*", r"^web\-.*$")
    assert root("host:web-0?").regex == r"^web\-0.$"
    assert root(r"path:a\*b") == Text(5, "fields.path", "a*b")
    assert root('path:"/api/*"') == Text(5, "fields.path", "/api/*", phrase=True)
    assert root("path:/api/*") == Wildcard(5, "fields.path", "/api/*", r"^/api/.*$")
    assert root("status:*") == Exists(7, "fields.status")
    assert root("_exists_:status") == Exists(0, "fields.status")
    assert root("*") == All(0)


def test_comparisons_and_ranges():
    assert root("status>=500") == Compare(0, "fields.status", ">=", "500")
    assert root("duration_ms > 250") == Compare(0, "fields.duration_ms", ">", "250")
    assert root("status:<500") == Compare(7, "fields.status", "<", "500")
    assert root("temp<=-5") == Compare(0, "fields.temp", "<=", "-5")
    assert root("ts>2026-01-01T10:00:00Z") == Compare(0, "fields.ts", ">", "2026-01-01T10:00:00Z")
    assert root("status:[500 TO 599]") == Range(7, "fields.status", "500", "599", True, True)
    assert root("status:{400 TO 500}") == Range(7, "fields.status", "400", "500", False, False)
    assert root("status:[400 TO 500}") == Range(7, "fields.status", "400", "500", True, False)
    assert root("bytes:[* TO 100]") == Range(6, "fields.bytes", None, "100", True, True)
    assert root('when:["2026-01-01" TO *]') == Range(5, "fields.when", "2026-01-01", None, True, True)


def test_boolean_logic_with_lucene_precedence():
    a, b, c = (Text(i, "message", x) for i, x in ((0, "a"), (5, "b"), (11, "c")))
    assert root("a OR b AND c") == Or(0, (a, And(5, (b, c))))
    assert root("a OR b c").items[1] == And(5, (Text(5, "message", "b"), Text(7, "message", "c")))
    assert root("(a OR b) AND c") == And(0, (Or(1, (Text(1, "message", "a"), Text(6, "message", "b"))),
                                             Text(13, "message", "c")))
    assert root("NOT a") == Not(0, Text(4, "message", "a"))
    assert root("-a") == Not(0, Text(1, "message", "a"))
    assert root("+a") == Text(1, "message", "a")
    assert root("a && b || c") == Or(0, (And(0, (Text(0, "message", "a"), Text(5, "message", "b"))),
                                         Text(10, "message", "c")))
    assert root("level:(error OR critical)") == Or(7, (Text(7, "level", "error"), Text(16, "level", "critical")))
    assert root("level:(error -critical)") == And(7, (Text(7, "level", "error"),
                                                      Not(13, Text(14, "level", "critical"))))
    assert root("ANDROID ORACLE") == And(0, (Text(0, "message", "ANDROID"), Text(8, "message", "ORACLE")))


def test_regexes_are_checked_by_re2():
    assert root(r"message:/timeout after \d+ms/") == Regex(8, "message", r"timeout after \d+ms")
    assert root("host:/web-0[1-3]/") == Regex(5, "host", "web-0[1-3]")
    assert root(r"path:/a\/b/") == Regex(5, "fields.path", "a/b")
    for bad, why in ((r"x:/(?=a)/", "invalid perl operator"), (r"x:/(a)\1/", "invalid escape"),
                     ("x:/a(/", "missing )"), ("x:/" + "a" * 201 + "/", "longer than 200")):
        with pytest.raises(QueryError) as caught:
            parse(bad)
        assert why in caught.value.message and caught.value.position == 2, (bad, caught.value)


@pytest.mark.parametrize("text, position, reason", [
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("(a", 2, "parenthesis is not closed"),
    ("a)", 1, "unexpected ')'"),
    ('"open', 0, "unterminated quoted phrase"),
    ("a:", 2, "end of query"),
    ("a AND", 5, "end of query"),
    ("OR a", 0, "unexpected OR"),
    ("a:b:c", 3, "unexpected ':'"),
    ("a:[1 TO", 7, "end of query"),
    ("a:[1 2]", 5, "unexpected '2'"),
    ("!a", 0, "unexpected character '!'"),
    ("a\\", 1, "a backslash must escape a character"),
    ("$where:1", 0, "not a field name"),
    ("a..b:1", 0, "not a field name"),
    ("_exists_:(a OR b)", 9, "_exists_ takes a field name"),
    ("a\x00b", 1, "NUL"),
])
def test_errors_say_what_and_where(text, position, reason):
    with pytest.raises(QueryError) as caught:
        parse(text)
    assert caught.value.position == position and reason in caught.value.message, caught.value


def test_hostile_queries_are_refused_not_a_stack_overflow_or_a_huge_tree():
    with pytest.raises(QueryError) as caught:
        parse("(" * 5000 + "a" + ")" * 5000)
    assert "longer than" in caught.value.message and caught.value.position == MAX_LENGTH
    deep = "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(QueryError) as caught:
        parse(deep)
    assert f"more than {MAX_DEPTH} deep" in caught.value.message and caught.value.position == MAX_DEPTH
    parse("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    with pytest.raises(QueryError) as caught:
        parse("NOT " * 40 + "a")
    assert "deep" in caught.value.message
    with pytest.raises(QueryError) as caught:
        parse(" ".join(f"w{i}" for i in range(MAX_CLAUSES + 1)))
    assert f"more than {MAX_CLAUSES} clauses" in caught.value.message
    assert len(parse(" ".join(f"w{i}" for i in range(MAX_CLAUSES))).root.items) == MAX_CLAUSES
