"""The field lists of the search page: a record's parsed fields as the names q spells, and a page's fields."""

from __future__ import annotations

from webui.querybar import field_leaves, highlight_query, message_terms, query_name, result_fields


def test_nested_fields_open_into_dotted_leaves_and_lists_stay_whole():
    fields = {"req": {"method": "GET", "headers": {"ua": "curl"}}, "status": 200, "tags": ["a", "b"], "empty": {}}
    assert field_leaves(fields) == [("empty", {}), ("req.headers.ua", "curl"), ("req.method", "GET"),
                                    ("status", 200), ("tags", ["a", "b"])]


def test_a_parsed_field_named_like_a_record_field_is_spelled_with_its_prefix():
    assert [query_name(n) for n in ("host", "level", "message", "fields.x", "_exists_", "hostname", "req.host")] == [
        "fields.host", "fields.level", "fields.message", "fields.fields.x", "fields._exists_", "hostname", "req.host"]
    assert field_leaves({"host": "inner"}) == [("fields.host", "inner")]


def test_a_page_lists_the_record_fields_then_every_parsed_leaf_once():
    records = [{"fields": {"status": 200, "req": {"method": "GET"}}}, {"fields": {"status": "200", "user": "ann"}},
               {"fields": {}}]
    assert result_fields(records) == ["host", "app", "source", "level", "req.method", "status", "user"]


def test_the_marks_are_what_q_looks_for_in_the_message_and_nothing_it_excludes():
    assert message_terms('level:error "payment provider" -timeout message:refused') == ["payment provider", "refused"]
    assert message_terms("connection reset") == ["connection reset", "connection", "reset"]
    assert message_terms("(a OR b) NOT c") == ["a", "b"]
    assert message_terms("level:(error") == [] and message_terms(None) == []


def test_marks_are_escaped_case_insensitive_and_the_longest_first():
    html = highlight_query("Connection RESET by <peer>, connection lost", "connection reset")
    assert html == "<mark>Connection RESET</mark> by &lt;peer&gt;, <mark>connection</mark> lost"
    assert highlight_query("<b>x</b>", "level:error") == "&lt;b&gt;x&lt;/b&gt;"
