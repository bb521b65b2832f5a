"""`GET /api/hosts/<host>/files`, `/verify` and the health `GET /api/hosts` adds: gaps only where
bytes are missing, each with its cause; lag; silence; the retention's boundary is no gap."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from coverage_data import beat, end_of, entry, file_docs, seed_file

from common.coverage import TRUNCATED_PREFIX


def files(api, host="web-01", verify=False):
    response = api.get(f"/api/hosts/{host}/{'verify' if verify else 'files'}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["files"]


def health(api, host="web-01"):
    return next(h for h in api.get("/api/hosts").get_json()["hosts"] if h["host"] == host)


def test_a_complete_file_has_no_gap_no_lag_and_is_not_silent(api, consumer_store, now):
    docs = file_docs(50, now - timedelta(minutes=1))
    seed_file(consumer_store, docs)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", end_of(docs))])
    [f] = files(api)
    assert (f["first_offset"], f["stored_through"], f["gaps"], f["lag_bytes"], f["silent"]) == (
        0, end_of(docs), [], 0, False)
    assert f["names"] == ["/var/log/app.log"] and f["size"] == f["confirmed"] == end_of(docs)
    [v] = files(api, verify=True)
    assert (v["gaps"], v["records"]) == ([], 50)
    assert (health(api)["has_gap"], health(api)["silent"], health(api)["lag_bytes"]) == (False, False, 0)


def test_a_redelivered_batch_changes_nothing_and_records_arriving_out_of_order_merge(api, consumer_store, now,
                                                                                     db):
    docs = file_docs(40, now - timedelta(minutes=1))
    seed_file(consumer_store, docs[20:])
    seed_file(consumer_store, docs[:20])
    before = db.coverage.find_one()
    seed_file(consumer_store, docs[5:15])  # stored already: no write at all
    after = db.coverage.find_one()
    assert before["ranges"] == after["ranges"] and before["v"] == after["v"]
    assert [r[:2] for r in after["ranges"]] == [[0, end_of(docs)]]


def test_missing_lines_are_gaps_and_a_line_cut_at_max_line_bytes_names_its_cause(api, consumer_store, now):
    docs = file_docs(30, now - timedelta(minutes=1), skip=(10, 11))
    full = file_docs(30, now - timedelta(minutes=1))
    cut = docs[20]
    cut["parse_error"] = f"{TRUNCATED_PREFIX} (64); truncated"
    cut["len"] -= 5  # the record kept only the first bytes of its line
    seed_file(consumer_store, docs)
    [f] = files(api)
    assert f["gaps"] == [[full[10]["offset"], full[12]["offset"]], [cut["offset"] + cut["len"], docs[21]["offset"]]]
    assert f["gap_causes"] == ["missing", "max_line_bytes"]
    assert f["stored_through"] == full[10]["offset"]
    [v] = files(api, verify=True)
    assert v["gaps"] == f["gaps"] and v["gap_causes"] == ["missing", "max_line_bytes"]
    assert health(api)["has_gap"] is True


def test_bytes_not_stored_yet_are_lag_not_a_gap(api, consumer_store, now):
    docs = file_docs(20, now - timedelta(minutes=1))
    seed_file(consumer_store, docs)
    size = end_of(docs) + 500
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", size, confirmed=end_of(docs))],
         at=time.time() - 30)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", size, confirmed=end_of(docs))])
    [f] = files(api)
    assert f["gaps"] == [] and f["lag_bytes"] == 500 and f["in_flight"] == [end_of(docs), size]
    assert f["lag_seconds"] >= 29, "dated by the first heartbeat that saw the unstored bytes"
    assert health(api)["lag_bytes"] == 500


def test_an_older_heartbeat_never_replaces_a_newer_one(api, consumer_store, now, db):
    docs = file_docs(5, now - timedelta(minutes=1))
    seed_file(consumer_store, docs)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", end_of(docs))])
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", 1)], at=time.time() - 60)
    assert db.heartbeats.find_one()["size"] == end_of(docs)


def test_truncation_before_everything_was_read_is_a_gap_with_its_cause(api, consumer_store, now):
    docs = file_docs(20, now - timedelta(minutes=1))
    seed_file(consumer_store, docs)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", end_of(docs) + 300, confirmed=end_of(docs),
                                          state="truncated")])
    [f] = files(api)
    assert f["gaps"] == [[end_of(docs), end_of(docs) + 300]] and f["gap_causes"] == ["truncation"]
    assert f["silent"] is False and f["lag_bytes"] == 0


def test_a_copy_shorter_than_what_the_original_held_is_a_copytruncate_overrun(api, consumer_store, now):
    docs = file_docs(20, now - timedelta(minutes=1))
    seed_file(consumer_store, docs)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", end_of(docs) + 200, confirmed=end_of(docs) - 40,
                                          state="truncated")], at=time.time() - 5)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log.1", end_of(docs),
                                          names=["/var/log/app.log", "/var/log/app.log.1"])])
    [f] = files(api)
    assert f["gaps"] == [[end_of(docs), end_of(docs) + 200]] and f["gap_causes"] == ["copytruncate overrun"]
    assert f["names"] == ["/var/log/app.log.1", "/var/log/app.log"]


def test_records_past_the_retention_end_coverage_at_the_ttl_boundary_without_a_gap(make_app, consumer_store, db):
    old = datetime.now(UTC) - timedelta(days=3)
    docs = file_docs(30, old)
    seed_file(consumer_store, docs[:10])
    fresh = docs[10:]
    for d in fresh:
        d["ts"] = d["received_at"] = datetime.now(UTC) - timedelta(minutes=1)
    seed_file(consumer_store, fresh)
    db.logs.delete_many({"offset": {"$lt": fresh[0]["offset"]}})  # what the TTL monitor does, without waiting for it
    app = make_app()
    app.config["OPSLOG"] = app.config["OPSLOG"].__class__(
        mongo=app.config["OPSLOG"].mongo.__class__(uri=app.config["OPSLOG"].mongo.uri, retention=86400.0),
        webui=app.config["OPSLOG"].webui)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = api_auth()
    [f] = files(client)
    assert (f["gaps"], f["first_offset"], f["expired_through"]) == ([], fresh[0]["offset"], fresh[0]["offset"])
    [v] = files(client, verify=True)
    assert v["gaps"] == [] and v["first_offset"] == fresh[0]["offset"]


def test_a_host_whose_heartbeats_stopped_is_silent(make_app, consumer_store, now):
    docs = file_docs(5, now - timedelta(minutes=1))
    seed_file(consumer_store, docs)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", end_of(docs))], at=time.time() - 120)
    client = make_app(stale_after=60.0).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = api_auth()
    [f] = files(client)
    assert f["silent"] is True and f["lag_seconds"] >= 119
    assert health(client)["silent"] is True


def api_auth() -> str:
    from webui_data import TOKEN
    return f"Bearer {TOKEN}"


def test_the_hosts_page_marks_a_host_with_a_gap_and_its_worst_lag(user, consumer_store, now):
    docs = file_docs(20, now - timedelta(minutes=1), skip=(5,))
    seed_file(consumer_store, docs)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", end_of(docs) + 700, confirmed=end_of(docs))])
    html = user.get("/hosts").get_data(as_text=True)
    assert re.search(r'class="badge gap" href="/hosts/web-01"', html)
    assert "lag 700 B" in html and 'class="badge silent"' not in html
