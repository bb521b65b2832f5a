"""GET /api/fields/<field>/top: a field's most frequent values in the current result, exact when
the scan budget covers the window, honest (`complete: false`) when it does not."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from webui_data import make_doc

METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE", "GET", "POST")


@pytest.fixture
def requests_hour(seed, now):
    """600 records over 50 minutes on three hosts; parsed fields of several types and depths."""
    docs = []
    for i in range(600):
        fields = {"status": (200, 200, 404, 500, 200, 301, "502")[i % 7],
                  "req": {"method": METHODS[i % len(METHODS)], "path": f"/api/{i % 13}"}}
        if i % 5 == 0:
            fields["user"] = f"u{i % 3}"
        docs.append(make_doc(now - timedelta(seconds=5 * i), f"request {i} {'slow' if i % 4 == 0 else 'fast'}",
                             host=("web-01", "web-02", "db-01")[i % 3], app=("nginx", "api")[i % 2],
                             level=("info", "info", "warning", "error")[i % 4], offset=i * 80, fields=fields))
    seed(docs)
    return docs


def expected(docs, value_of, limit=10):
    counts = Counter(v for v in map(value_of, docs) if v is not None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], _bson_order(kv[0])))
    return [{"value": v, "count": n} for v, n in ranked[:limit]]


def _bson_order(value):
    """MongoDB's order between the types used here: numbers before strings."""
    return (0, value, "") if isinstance(value, int) else (1, 0, value)


def top(api, field, **params):
    response = api.get(f"/api/fields/{field}/top", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_counts_are_exact_when_the_budget_covers_the_window(api, requests_hour):
    body = top(api, "req.method")
    assert body == {"field": "req.method", "values": expected(requests_hour, lambda d: d["fields"]["req"]["method"]),
                    "scanned": 600, "complete": True}
    # numbers stored as numbers and a numeric string stay apart, each with its own count
    assert top(api, "status")["values"] == expected(requests_hour, lambda d: d["fields"]["status"])
    assert {"value": "502", "count": sum(d["fields"]["status"] == "502" for d in requests_hour)} \
        in top(api, "status")["values"]


def test_the_current_result_is_what_is_counted_filters_and_q_included(api, requests_hour):
    result = [d for d in requests_hour if d["host"] == "web-02" and d["level"] in ("warning", "error")
              and "slow" in d["message"]]
    body = top(api, "req.path", host="web-02", level="warning,error", q="SLOW", limit=3)
    assert body["values"] == expected(result, lambda d: d["fields"]["req"]["path"], limit=3)
    assert body["scanned"] == len(result) and body["complete"] is True
    # the same result spelled in the query language alone
    same = top(api, "req.path", q="host:web-02 level:(warning OR error) slow", limit=3)
    assert same["values"] == body["values"] and same["scanned"] == body["scanned"]
    web = [d for d in requests_hour if d["host"].startswith("web-") and d["fields"]["req"]["method"] != "GET"]
    assert top(api, "host", q="host:web-* -req.method:GET")["values"] == expected(web, lambda d: d["host"])
    numeric = [d for d in requests_hour if str(d["fields"]["status"]).isdigit() and int(d["fields"]["status"]) >= 500]
    assert top(api, "status", q="status>=500")["values"] == expected(numeric, lambda d: d["fields"]["status"])


def test_record_fields_explicit_fields_prefix_and_records_without_the_field(api, requests_hour):
    assert top(api, "host")["values"] == expected(requests_hour, lambda d: d["host"])
    assert top(api, "level", app="api")["values"] == expected([d for d in requests_hour if d["app"] == "api"],
                                                              lambda d: d["level"])
    # present in one record of five: the others are counted in `scanned`, never as a value
    user = top(api, "fields.user")
    assert user["values"] == expected(requests_hour, lambda d: d["fields"].get("user"))
    assert sum(v["count"] for v in user["values"]) == 120 and user["scanned"] == 600
    assert top(api, "user")["values"] == user["values"]
    assert top(api, "no.such.field") == {"field": "no.such.field", "values": [], "scanned": 600, "complete": True}


def test_a_spent_budget_says_complete_false_and_counts_only_what_it_read(app, api, requests_hour):
    app.extensions["opslog.reader"].scan_budget = 150
    body = top(api, "req.method")
    assert body["complete"] is False
    assert 0 < body["scanned"] < 600
    truth = {v["value"]: v["count"] for v in expected(requests_hour, lambda d: d["fields"]["req"]["method"])}
    assert all(v["count"] <= truth[v["value"]] for v in body["values"])
    assert sum(v["count"] for v in body["values"]) == body["scanned"]
    # the same request with the default budget is whole again
    app.extensions["opslog.reader"].scan_budget = 40_000
    assert top(api, "req.method")["complete"] is True


def test_without_rollups_the_window_is_still_counted_within_the_budget(app, api, db, requests_hour):
    db.rollups.delete_many({})
    assert top(api, "host")["values"] == expected(requests_hour, lambda d: d["host"])
    app.extensions["opslog.reader"].scan_budget = 100
    cut = top(api, "host")
    assert cut["complete"] is False and cut["scanned"] <= 100


@pytest.mark.parametrize("field", ["$where", "a..b", "fields", ".a", "a.", "a%20b", "a.$x", "x" * 201])
def test_a_bad_field_name_is_a_400_naming_the_field(api, field):
    response = api.get(f"/api/fields/{field}/top")
    assert response.status_code == 400
    body = response.get_json()
    assert body["param"] == "field" and "field name" in body["error"]


def test_a_query_that_does_not_parse_is_a_400_with_its_position(api):
    body = api.get("/api/fields/status/top", query_string={"q": "level:(error OR"}).get_json()
    assert body["param"] == "q" and body["position"] == len("level:(error OR")


def test_bad_filters_and_missing_credentials(api, client, requests_hour):
    assert api.get("/api/fields/status/top?limit=0").get_json()["param"] == "limit"
    assert api.get("/api/fields/status/top?level=loud").get_json()["param"] == "level"
    assert len(top(api, "req.path", limit=1000)["values"]) == 13  # capped at 100, 13 distinct
    assert client.get("/api/fields/status/top").status_code == 401
