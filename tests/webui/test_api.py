"""The JSON API: the contract of shared/DESIGN.md, validation and the numbers it returns."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from webui_data import file_lines, make_doc

from webui.params import iso


def spread(now, n, step=timedelta(seconds=7), **kw):
    return [make_doc(now - i * step, f"line {i}", offset=i * 100, **kw) for i in range(n)]


def test_logs_are_newest_first_with_the_documented_fields(api, seed, now):
    seed(spread(now, 5, level="warning", fields={"status": 502}))
    body = api.get("/api/logs").get_json()
    assert [r["message"] for r in body["records"]] == [f"line {i}" for i in range(5)]
    first = body["records"][0]
    assert first["ts"] == iso(now) and first["ts"].endswith("Z")
    assert {k: first[k] for k in ("host", "app", "source", "offset", "level", "fields")} == {
        "host": "web-01", "app": "nginx", "source": "/var/log/app.log", "offset": 0, "level": "warning",
        "fields": {"status": 502}}
    assert body["next_cursor"] is None


def test_default_window_is_one_hour_and_relative_since_widens_it(api, seed, now):
    seed([make_doc(now, "recent"), make_doc(now - timedelta(hours=3), "three hours ago")])
    assert [r["message"] for r in api.get("/api/logs").get_json()["records"]] == ["recent"]
    wide = api.get("/api/logs?since=4h").get_json()["records"]
    assert [r["message"] for r in wide] == ["recent", "three hours ago"]
    until = api.get(f"/api/logs?since=4h&until={iso(now - timedelta(hours=1))}").get_json()["records"]
    assert [r["message"] for r in until] == ["three hours ago"]


def test_filters_by_host_app_source_and_several_levels(api, seed, now):
    seed([make_doc(now, "a", host="web-01", level="error"),
          make_doc(now - timedelta(seconds=1), "b", host="web-02", level="error"),
          make_doc(now - timedelta(seconds=2), "c", host="web-01", level="info"),
          make_doc(now - timedelta(seconds=3), "d", host="web-01", level="critical", app="api"),
          make_doc(now - timedelta(seconds=4), "e", host="web-01", level=None, source="/var/log/other.log")])

    def messages(query):
        response = api.get(f"/api/logs?{query}")
        assert response.status_code == 200, response.get_json()
        return [r["message"] for r in response.get_json()["records"]]

    assert messages("host=web-01&level=error,critical") == ["a", "d"]
    assert messages("host=web-01&level=error&level=critical") == ["a", "d"]
    assert messages("app=api") == ["d"]
    assert messages("level=none") == ["e"]
    assert messages("source=/var/log/other.log") == ["e"]
    assert messages("host=nope") == []


def test_text_search_is_a_literal_case_insensitive_substring(api, seed, now):
    """Plain words keep their old meaning; text with the language's syntax in it is quoted now."""
    seed([make_doc(now, "GET /index.html 200"), make_doc(now - timedelta(seconds=1), "get /indexXhtml 404"),
          make_doc(now - timedelta(seconds=2), "price is $5 (.*) [x]"),
          make_doc(now - timedelta(seconds=3), "nothing here")])

    def messages(q):
        return [r["message"] for r in api.get("/api/logs", query_string={"q": q}).get_json()["records"]]

    assert messages("get /INDEX") == ["GET /index.html 200", "get /indexXhtml 404"]
    assert messages("index.html") == ["GET /index.html 200"]  # the dot is not a wildcard
    assert messages('"$5 (.*) [x]"') == ["price is $5 (.*) [x]"]
    assert messages('".*"') == ["price is $5 (.*) [x]"]
    assert messages('"{\\"$ne\\": null}"') == []
    assert api.get("/api/logs", query_string={"q": '{"$ne": null}'}).status_code == 400


def test_cursor_pagination_returns_every_record_exactly_once(api, seed, now):
    # Ties on ts across pages are the hard case: ten records share each timestamp.
    docs = [make_doc(now - timedelta(seconds=i // 10), f"m{i}", offset=i, _id=f"{i:024x}") for i in range(230)]
    seed(docs)
    seen, cursor, pages = [], None, 0
    while True:
        response = api.get("/api/logs", query_string={"limit": 25, **({"cursor": cursor} if cursor else {})})
        body = response.get_json()
        seen += [r["id"] for r in body["records"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 230
    assert sorted(seen) == sorted(d["_id"] for d in docs)
    assert pages in (10, 11)
    order = [(r["ts"], r["id"]) for r in (api.get("/api/logs?limit=230").get_json()["records"])]
    assert order == sorted(order, reverse=True)


def test_limit_is_capped_by_config(make_app, seed, now):
    seed(spread(now, 30, step=timedelta(seconds=1)))
    client = make_app(max_limit=10).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-token-0123456789"
    body = client.get("/api/logs?limit=5000").get_json()
    assert len(body["records"]) == 10 and body["next_cursor"]


FILTERED = ("/api/logs", "/api/histogram", "/api/export")


@pytest.mark.parametrize("query, param, paths", [
    ("since=yesterday", "since", FILTERED), ("until=12:61", "until", FILTERED),
    ("since=2h&until=3h", "since", FILTERED), ("level=fatal", "level", FILTERED),
    ("host=%00x", "host", FILTERED), ("q=" + "x" * 501, "q", FILTERED), ("source=a%0Ab", "source", FILTERED),
    ("limit=ten", "limit", ("/api/logs", "/api/export")), ("limit=0", "limit", ("/api/logs", "/api/export")),
    ("limit=-5", "limit", ("/api/logs",)), ("cursor=not-a-cursor!", "cursor", ("/api/logs",)),
    ("cursor=Zm9vLmJhcg", "cursor", ("/api/logs",)),
])
def test_a_bad_parameter_is_a_400_naming_it(api, query, param, paths):
    for path in paths:
        response = api.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        body = response.get_json()
        assert body["param"] == param and body["error"]


def test_other_endpoints_validate_their_own_parameters(api, seed, now):
    seed(spread(now, 1))
    rid = api.get("/api/logs").get_json()["records"][0]["id"]
    assert api.get(f"/api/logs/{rid}/context?before=x").get_json()["param"] == "before"
    assert api.get(f"/api/logs/{rid}/context?after=-1").get_json()["param"] == "after"
    assert api.get("/api/logs/bad$id/context").get_json()["param"] == "id"
    missing = api.get("/api/logs/ffffffffffffffffffffffff/context")
    assert missing.status_code == 404 and missing.get_json()["param"] == "id"
    assert api.get("/api/export?format=xlsx").get_json()["param"] == "format"
    assert api.get("/api/histogram?since=200d").get_json()["param"] == "since"
    assert api.get("/api/hosts/web-01/calendar?days=0").get_json()["param"] == "days"


def test_histogram_counts_equal_the_inserted_records_per_level(api, seed, now):
    base = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    docs = []
    for minute in range(30):
        for i in range(minute % 4):
            docs.append(make_doc(base + timedelta(minutes=minute, seconds=i), f"m{minute}-{i}",
                                 level=("error" if i == 2 else "info"), offset=minute * 10 + i))
    seed(docs)
    body = api.get(f"/api/histogram?since={iso(base)}&until={iso(base + timedelta(minutes=30))}").get_json()
    assert body["bucket_seconds"] == 60 and body["complete"]
    assert len(body["buckets"]) == 30
    for minute, bucket in enumerate(body["buckets"]):
        assert bucket["start"] == iso(base + timedelta(minutes=minute))
        assert bucket["count"] == minute % 4
        assert bucket["levels"].get("error", 0) == (1 if minute % 4 == 3 else 0)
    assert sum(b["count"] for b in body["buckets"]) == len(docs)
    only_errors = api.get(f"/api/histogram?since={iso(base)}&until={iso(base + timedelta(minutes=30))}&level=error")
    assert sum(b["count"] for b in only_errors.get_json()["buckets"]) == sum(d.get("level") == "error" for d in docs)


def test_histogram_over_a_day_uses_quarter_hours_and_counts_everything(api, seed, now):
    day_start = (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    docs = [make_doc(day_start + timedelta(minutes=37 * i), f"m{i}", host=f"h{i % 3}", offset=i,
                     level=("error" if i % 5 == 0 else "info")) for i in range(38)]
    seed(docs)
    body = api.get(f"/api/histogram?since={iso(day_start)}&until={iso(day_start + timedelta(hours=24))}").get_json()
    assert body["bucket_seconds"] == 900 and body["complete"] and len(body["buckets"]) == 96
    assert sum(b["count"] for b in body["buckets"]) == 38
    assert sum(b["levels"].get("error", 0) for b in body["buckets"]) == 8
    host = api.get(f"/api/histogram?since={iso(day_start)}&until={iso(day_start + timedelta(hours=24))}&host=h1")
    assert sum(b["count"] for b in host.get_json()["buckets"]) == sum(d["host"] == "h1" for d in docs)


def test_histogram_with_text_counts_only_matching_lines(api, seed, now):
    seed([make_doc(now - timedelta(seconds=i), "timeout talking to db" if i % 3 == 0 else "ok", offset=i)
          for i in range(30)])
    body = api.get("/api/histogram?q=TIMEOUT").get_json()
    assert body["text_filter_applied"] is True
    assert sum(b["count"] for b in body["buckets"]) == 10


def test_context_follows_the_file_across_offsets_not_time(api, seed, now):
    # Timestamps in the file are out of order (parsed from the lines); context is file order.
    messages = [f"line {i} " + "x" * (i % 7) for i in range(40)]
    lines = file_lines(messages, now - timedelta(minutes=10))
    lines[21]["ts"], lines[19]["ts"] = lines[19]["ts"], lines[21]["ts"]
    other_host = file_lines(messages, now - timedelta(minutes=10), host="web-02")
    seed(lines + other_host)
    anchor = lines[20]
    body = api.get(f"/api/logs/{anchor['_id']}/context?before=3&after=4").get_json()
    assert [r["message"] for r in body["records"]] == messages[17:25]
    assert all(r["host"] == "web-01" for r in body["records"])
    at_start = api.get(f"/api/logs/{lines[1]['_id']}/context?before=5&after=1").get_json()["records"]
    assert [r["message"] for r in at_start] == messages[0:3]


def test_context_does_not_mix_in_an_older_file_that_had_the_same_path(api, seed, now):
    older = file_lines([f"old generation line {i:03d}" for i in range(50)], now - timedelta(days=1))
    current_messages = [f"new {i}" + "y" * (i % 5) for i in range(30)]
    current = file_lines(current_messages, now - timedelta(minutes=20))
    seed(older + current)
    body = api.get(f"/api/logs/{current[10]['_id']}/context?before=10&after=10").get_json()
    assert [r["message"] for r in body["records"]] == current_messages[0:21]


def test_context_continues_into_the_rotated_copy_of_the_file(api, seed, now):
    # copytruncate: lines up to the truncation were read from the copy, from where the original left off.
    messages = [f"event {i}" for i in range(12)]
    docs = file_lines(messages, now - timedelta(minutes=5))
    for d in docs[6:]:
        d["source"] = "/var/log/app.log.1"
    seed(docs)
    body = api.get(f"/api/logs/{docs[5]['_id']}/context?before=2&after=3").get_json()
    assert [r["message"] for r in body["records"]] == messages[3:9]


def test_hosts_lists_each_host_with_last_seen_and_counts(api, seed, now):
    seed(spread(now, 4, host="web-01", level="error") + spread(now - timedelta(minutes=1), 2, host="db-01"))
    hosts = api.get("/api/hosts").get_json()["hosts"]
    assert [h["host"] for h in hosts] == ["db-01", "web-01"]
    web = hosts[1]
    assert web["records"] == 4 and web["errors"] == 4 and web["last_seen"] == iso(now)
    assert web["apps"] == ["nginx"] and web["sources"] == ["/var/log/app.log"]
    one = api.get("/api/hosts/db-01").get_json()
    assert one["records"] == 2
    assert api.get("/api/hosts/nope").status_code == 404


def test_calendar_counts_records_and_errors_per_day(api, seed, now):
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    docs = [make_doc(today - timedelta(days=2) + timedelta(hours=h), f"x{h}", level="error" if h < 2 else "info",
                     offset=h) for h in range(5)]
    seed(docs + [make_doc(now - timedelta(minutes=1), "today", offset=99)])
    body = api.get("/api/hosts/web-01/calendar?days=3").get_json()
    assert body["complete"]
    assert [(d["count"], d["errors"]) for d in body["days"]] == [(5, 2), (0, 0), (1, 0)]
    assert body["days"][-1]["date"] == today.date().isoformat()


def test_export_ndjson_streams_every_matching_record(api, seed, now):
    seed(spread(now, 40, step=timedelta(seconds=1), level="error") + spread(now, 5, host="db-01"))
    response = api.get("/api/export?host=web-01&format=ndjson")
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert len(rows) == 40 and all(r["host"] == "web-01" for r in rows)
    assert len(api.get("/api/export?host=web-01&limit=7").get_data(as_text=True).splitlines()) == 7


def test_export_csv_neutralises_formula_injection(api, seed, now):
    payloads = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "plain, with \"quotes\""]
    seed([make_doc(now - timedelta(seconds=i), p, offset=i, host="=cmd|' /C calc'!A0" if i == 0 else "web-01")
          for i, p in enumerate(payloads)])
    response = api.get("/api/export?format=csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    messages = [r["message"] for r in rows]
    assert messages == ["'=HYPERLINK(\"http://evil\",\"x\")", "'+1+1", "'-2+3", "'@SUM(A1)", "'\t=1",
                        "plain, with \"quotes\""]
    assert rows[0]["host"] == "'=cmd|' /C calc'!A0"
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())


def test_healthz_and_metrics_are_open(client):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok", "checks": {"database": True}}
    client.get("/api/logs")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'opslog_web_requests_total{endpoint="api.logs",status="401"} 1.0' in metrics.get_data(as_text=True)


def test_unreachable_database_is_a_503_not_a_crash(web_config):
    from pymongo import MongoClient

    from webui import create_app
    with MongoClient("mongodb://127.0.0.1:1", serverSelectionTimeoutMS=200, connectTimeoutMS=200) as dead:
        client = create_app(web_config(auth="none"), db=dead["opslog"]).test_client()
        assert client.get("/healthz").status_code == 503
        response = client.get("/api/logs")
        assert response.status_code == 503 and "unavailable" in response.get_json()["error"]
        assert client.get("/").status_code == 503
