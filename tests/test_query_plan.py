"""The planner (`webui.queries.plan`) as the pure function it is: query + capabilities -> filter,
without a server (the API suite runs the same plans on one)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from common.query import parse
from webui.queries.filters import Filters
from webui.queries.plan import NUMERIC_STRING, Capabilities, plan


def planned(text, **caps):
    return plan(parse(text), Capabilities(**caps))


def test_terms_are_escaped_case_insensitive_substrings_of_message():
    assert planned("a.b").match == {"message": {"$regex": re.escape("a.b"), "$options": "i"}}
    assert planned("pay*out").match == {"message": {"$regex": r"pay.*out", "$options": "i"}}
    assert planned('"$where"').match == {"message": {"$regex": re.escape("$where"), "$options": "i"}}


def test_numbers_compare_with_numbers_and_numeric_strings():
    assert planned("status:500").match == {"fields.status": {"$in": [500, "500"]}}
    assert planned("ratio:0.5").match == {"fields.ratio": {"$in": [0.5, "0.5"]}}
    assert planned("ok:true").match == {"fields.ok": {"$in": [True, "true"]}}
    both = planned("status>=500").match["$or"]
    assert both[0] == {"fields.status": {"$gte": 500}}
    assert both[1]["$expr"]["$and"] == [
        {"$eq": [{"$type": "$fields.status"}, "string"]},
        {"$regexMatch": {"input": "$fields.status", "regex": NUMERIC_STRING}},
        {"$gte": [{"$toDouble": "$fields.status"}, 500]}]
    assert planned("status:{400 TO 500]").match["$or"][0] == {"fields.status": {"$gt": 400, "$lte": 500}}
    assert planned("when>2026-01-31").match == {"$or": [
        {"fields.when": {"$gt": datetime(2026, 1, 31, tzinfo=UTC)}}, {"fields.when": {"$gt": "2026-01-31"}}]}
    assert planned("name>m").match == {"fields.name": {"$gt": "m"}}
    assert planned("host:>m").match == {"host": {"$gt": "m"}}  # top-level fields compare as strings


def test_negation_is_nor_so_records_without_the_field_match():
    assert planned("-status:500").match == {"$nor": [{"fields.status": {"$in": [500, "500"]}}]}
    assert planned("NOT *").match == {"_id": {"$in": []}}
    assert planned("*").match == {}


def test_host_app_level_equalities_are_folded_for_the_indexes_and_the_rollups():
    p = planned("level:(error OR CRITICAL) host:web-01 app:nginx timeout")
    assert (p.host, p.app, p.levels, p.rollup_exact) == ("web-01", "nginx", frozenset({"error", "critical"}), False)
    p = planned("level:error host:web-0*")
    assert p.rollup_exact and p.levels == frozenset({"error"}) and p.host_prefix == r"^web\-0"
    assert p.rollup_test("web-01", "x", "error") and not p.rollup_test("web-11", "x", "error")
    assert not p.rollup_test("web-01", "x", None)
    assert p.host_test("web-02") and not p.host_test("db-01")
    p = planned("-host:/^db/ app:*")
    assert p.rollup_exact and p.rollup_test("web-1", "a", None) and not p.rollup_test("db-1", "a", None)
    assert not p.rollup_test("web-1", None, None)
    assert not planned("level:error OR timeout").rollup_exact
    assert planned("level:error OR timeout").levels is None


def test_text_index_is_used_for_whole_words_only_when_the_server_has_one():
    assert planned("timeout payment").text_search is None
    p = planned('timeout pay* "two words" -refused', text_index=True)
    assert p.text_search == '"timeout"'
    assert p.match["$and"][0] == {"message": {"$regex": "timeout", "$options": "i"}}  # the substring still holds


def test_indexed_fields_give_leads_that_hold_every_match():
    p = planned("status>=500 level:error")
    assert p.field_leads == (("fields.status", ({"fields.status": {"$gte": 500}},
                                                {"fields.status": {"$gte": "-", "$lt": ":"}}), False),)
    # an equality is one index key per value: even a server that plans only equalities uses them
    assert planned("status:503").field_leads == (("fields.status", ({"fields.status": 503},
                                                                   {"fields.status": "503"}), True),)
    assert planned("req.method:GET").field_leads == (("fields.req.method", ({"fields.req.method": "GET"},), True),)
    assert planned("path:/api/*").field_leads == (
        ("fields.path", ({"fields.path": {"$regex": "^/api/"}},), False),)
    assert planned("status:500 OR timeout").field_leads == ()  # not a top-level clause: no lead
    assert Capabilities(indexed_fields=frozenset({"fields.status"})).indexed("fields.status")
    assert Capabilities(wildcard_index=True).indexed("fields.anything")
    assert not Capabilities(wildcard_index=True).indexed("host")
    # every numeric string sorts between "-" and ":", so the string lead misses none
    for s in ("-1", "0", "9.5", "500", "-0.25"):
        assert "-" <= s < ":" and re.match(NUMERIC_STRING, s)


def test_a_range_leads_only_on_a_server_that_scans_index_ranges():
    equality_only = Capabilities(indexed_fields=frozenset({"fields.status"}))
    ranges = Capabilities(indexed_fields=frozenset({"fields.status"}), index_ranges=True)
    for text, caps, lead in (("status>=500", equality_only, None), ("status:503", equality_only, "fields.status"),
                             ("status>=500", ranges, "fields.status")):
        flt = Filters(since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 1, 2, tzinfo=UTC), q=text,
                      capabilities=caps)
        assert (flt.field_lead() or (None,))[0] == lead, (text, caps)
