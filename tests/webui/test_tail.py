"""The live tail by arrival order (`GET /api/tail`): every stored record exactly once, in storing
order, whatever its event time; cursors checked; a scan budget; the same stream as Server-Sent Events."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from webui_data import TOKEN, make_doc

from common.arrival import STATE_COLLECTION, frontier
from consumer.store import Message
from consumer.store.arrival import ArrivalOrder


def walk(api, cursor: str, want: int, **filters) -> tuple[list[dict], str]:
    """Follow /api/tail from `cursor` until `want` records came (or it is caught up with fewer)."""
    records: list[dict] = []
    for _ in range(1000):
        body = api.get("/api/tail", query_string={**filters, "cursor": cursor, "limit": 100}).get_json()
        records += body["records"]
        cursor = body["next_cursor"]
        if len(records) >= want or (body["caught_up"] and not body["records"]):
            break
    return records, cursor


def start(api, **filters) -> str:
    body = api.get("/api/tail", query_string=filters).get_json()
    assert body["records"] == [] and body["caught_up"] is True
    return body["next_cursor"]


def test_a_tail_starts_at_the_end_and_then_sees_every_new_record_once_in_storing_order(api, seed, now):
    seed([make_doc(now - timedelta(seconds=i), f"before {i}", offset=i) for i in range(50)])
    cursor = start(api)
    assert walk(api, cursor, 1)[0] == [], "records stored before the start are not part of the tail"
    seed([make_doc(now, f"new {i}", offset=1000 + i) for i in range(250)])
    # hours old (a backlog, a skewed clock): the tail follows storing order, not event time
    seed([make_doc(now - timedelta(hours=6), f"old {i}", offset=2000 + i) for i in range(30)])
    seed([make_doc(now + timedelta(seconds=1), f"newer {i}", offset=3000 + i) for i in range(20)])
    records, _ = walk(api, cursor, 300)
    messages = [r["message"] for r in records]
    assert messages == [f"new {i}" for i in range(250)] + [f"old {i}" for i in range(30)] + \
        [f"newer {i}" for i in range(20)]


def test_filters_apply_and_the_time_window_does_not(api, seed, now):
    cursor = start(api, host="web-02", level="error")
    seed([make_doc(now - timedelta(days=3 if i % 2 else 0), f"line {i}", host=("web-01", "web-02")[i % 2],
                   level=("info", "error")[i % 3 == 0], offset=i) for i in range(120)])
    records, _ = walk(api, cursor, 1000, host="web-02", level="error")
    expected = [f"line {i}" for i in range(120) if i % 2 and i % 3 == 0]
    assert [r["message"] for r in records] == expected


def test_a_redelivered_record_keeps_its_first_position(consumer_store, db, now):
    doc = make_doc(now, "once", offset=7)
    batch = [{**doc, "ts": now.replace(tzinfo=None), "received_at": now.replace(tzinfo=None), "batch": "m1"}]
    consumer_store.write([Message("m1", [dict(d) for d in batch])])
    first = db.logs.find_one({"_id": doc["_id"]})["arrival"]
    consumer_store.write([Message("m1", [dict(d) for d in batch])])
    assert db.logs.find_one({"_id": doc["_id"]})["arrival"] == first
    assert db.logs.count_documents({}) == 1


@pytest.mark.parametrize("raw", ["garbage!", "dDEyYQ", "eDEy", "", "dC0x", "A" * 60])
def test_a_cursor_the_api_did_not_make_is_refused(api, raw):
    response = api.get("/api/tail", query_string={"cursor": raw} if raw else {"cursor": "%%%"})
    assert response.status_code == 400
    assert response.get_json()["param"] == "cursor"


def test_a_cursor_beyond_the_newest_record_is_refused(api, seed, now):
    from webui.tail import encode_cursor
    seed([make_doc(now, "one")])
    assert api.get("/api/tail", query_string={"cursor": encode_cursor(1)}).status_code == 200
    response = api.get("/api/tail", query_string={"cursor": encode_cursor(10**9)})
    assert response.status_code == 400 and response.get_json()["param"] == "cursor"


def test_a_selective_filter_stops_at_the_scan_budget_and_resumes_from_the_scan_position(app, api, seed, now):
    app.extensions["opslog.reader"].scan_budget = 200
    cursor = start(api, host="rare")
    seed([make_doc(now, f"common {i}", host="busy", offset=i) for i in range(1000)])
    seed([make_doc(now, "the rare one", host="rare", offset=5000)])
    body = api.get("/api/tail", query_string={"host": "rare", "cursor": cursor}).get_json()
    assert body["records"] == [] and body["caught_up"] is False, "one request scans no more than its budget"
    records, _ = walk(api, body["next_cursor"], 1, host="rare")
    assert [r["message"] for r in records] == ["the rare one"]


def test_a_slow_batch_holds_the_frontier_so_its_late_commit_is_not_skipped(consumer_store, db, api, seed, now):
    """Two writers: one reserved its positions first but commits last. The tail must not pass it."""
    cursor = start(api)
    reserved, release = threading.Event(), threading.Event()

    def hold(first: int, count: int) -> None:
        reserved.set()
        release.wait(30)

    slow = ArrivalOrder(db[STATE_COLLECTION], lease=60)
    slow.pause = hold
    late = [make_doc(now, f"late {i}", offset=100 + i) for i in range(5)]

    def slow_write() -> None:
        stamped = [{**d, "ts": now.replace(tzinfo=None), "received_at": now.replace(tzinfo=None)} for d in late]
        with slow.stamped(stamped):
            db.logs.insert_many(stamped)

    writer = threading.Thread(target=slow_write)
    writer.start()
    try:
        assert reserved.wait(30)
        seed([make_doc(now, f"early {i}", offset=i) for i in range(10)])  # positions after the slow block
        records, cursor = walk(api, cursor, 100)
        assert records == [], "the frontier stays below the open block"
    finally:
        release.set()
        writer.join(30)
    records, _ = walk(api, cursor, 15)
    assert [r["message"] for r in records] == [f"late {i}" for i in range(5)] + [f"early {i}" for i in range(10)]


def test_the_block_of_a_writer_that_died_stops_holding_the_frontier_when_its_lease_ends(db):
    state = db[STATE_COLLECTION]
    dead = ArrivalOrder(state, lease=3)
    dead.init()
    first, until = dead._reserve(10)  # reserved, never inserted nor closed: the worker died there
    doc = state.find_one({"_id": "logs"})
    assert frontier(doc, until - 1) == first - 1
    assert frontier(doc, until + 0.001) == first + 9


def sse_events(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        fields: dict = {}
        for line in block.splitlines():
            if line.startswith(":"):
                fields.setdefault("comment", line)
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if fields:
            events.append(fields)
    return events


def test_server_sent_events_carry_the_cursor_as_id_and_resume_from_last_event_id(app, api, seed, now):
    import orjson
    app.config.update(OPSLOG_TAIL_STREAM_SECONDS=1.5, OPSLOG_TAIL_HEARTBEAT_SECONDS=0.5)
    cursor = start(api)
    seed([make_doc(now, f"first {i}", offset=i) for i in range(30)])
    response = api.get("/api/tail", query_string={"cursor": cursor}, headers={"Accept": "text/event-stream"})
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = sse_events(response.get_data(as_text=True))
    assert events[0]["event"] == "cursor" and events[0]["id"] == cursor
    got = [r["message"] for e in events if e.get("event") == "records" for r in orjson.loads(e["data"])["records"]]
    assert got == [f"first {i}" for i in range(30)]
    assert any("comment" in e for e in events), "a heartbeat comment while nothing new arrives"
    last_id = [e["id"] for e in events if "id" in e][-1]

    seed([make_doc(now, f"second {i}", offset=100 + i) for i in range(20)])
    # EventSource reconnects to the same URL (the old cursor in it) with Last-Event-ID: that wins
    again = api.get("/api/tail", query_string={"cursor": cursor},
                    headers={"Accept": "text/event-stream", "Last-Event-ID": last_id})
    events = sse_events(again.get_data(as_text=True))
    got = [r["message"] for e in events if e.get("event") == "records" for r in orjson.loads(e["data"])["records"]]
    assert got == [f"second {i}" for i in range(20)]
    bad = api.get("/api/tail", headers={"Accept": "text/event-stream", "Last-Event-ID": "nope"})
    assert bad.status_code == 400 and bad.get_json()["param"] == "cursor"


def test_event_streams_count_against_max_streams(make_app, seed, now):
    app = make_app(threads=3, max_streams=1)
    app.config.update(OPSLOG_TAIL_STREAM_SECONDS=30, OPSLOG_TAIL_HEARTBEAT_SECONDS=0.2)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    held = client.get("/api/tail", headers={"Accept": "text/event-stream"}, buffered=False)
    try:
        assert held.status_code == 200
        next(held.response)  # the stream runs
        refused = client.get("/api/tail", headers={"Accept": "text/event-stream"})
        assert refused.status_code == 503 and "webui.max_streams" in refused.get_json()["error"]
        assert client.get("/api/tail").status_code == 200, "the JSON form is an ordinary request"
    finally:
        held.close()
    assert client.get("/api/tail", headers={"Accept": "text/event-stream"}, buffered=False).status_code == 200


def test_a_failed_insert_leaves_its_block_open_until_the_lease_ends_and_the_retry_takes_a_new_one(db):
    """The server may still be finishing an insert the client gave up on: readers wait for the lease."""
    state = db[STATE_COLLECTION]
    order = ArrivalOrder(state, lease=30)
    docs = [{"_id": f"r{i}"} for i in range(3)]
    with pytest.raises(RuntimeError), order.stamped(docs):
        raise RuntimeError("the insert failed")
    failed = docs[0]["arrival"]
    doc = state.find_one({"_id": "logs"})
    assert frontier(doc, time.time()) == failed - 1, "still open: the tail does not pass it"
    with order.stamped(docs):
        db.logs.insert_many(docs)
    assert [d["arrival"] for d in docs] == [failed + 3, failed + 4, failed + 5]
    assert frontier(state.find_one({"_id": "logs"}), time.time()) == failed - 1
    assert frontier(state.find_one({"_id": "logs"}), time.time() + 31) == failed + 5


def test_the_query_language_filters_the_tail_and_a_bad_query_names_its_position(api, seed, now):
    query = "status>=500 AND NOT path:/health*"
    cursor = start(api, q=query)
    seed([make_doc(now, f"req {i}", offset=i, fields={"status": 200 + 100 * (i % 4),
                                                       "path": "/health/live" if i % 3 == 0 else "/api/orders"})
          for i in range(40)])
    records, _ = walk(api, cursor, 100, q=query)
    expected = [f"req {i}" for i in range(40) if i % 4 == 3 and i % 3 != 0]
    assert expected and [r["message"] for r in records] == expected
    bad = api.get("/api/tail", query_string={"q": "level:(error", "cursor": cursor})
    assert bad.status_code == 400 and bad.get_json()["param"] == "q" and "position" in bad.get_json()


def test_a_slow_insert_keeps_its_block_open_past_the_lease_by_renewing_it(db):
    state = db[STATE_COLLECTION]
    order = ArrivalOrder(state, lease=3)
    docs = [{"_id": "slow"}]
    with order.stamped(docs):
        end = time.monotonic() + 5  # longer than the lease: only renewal keeps readers below the block
        while time.monotonic() < end:
            assert frontier(state.find_one({"_id": "logs"}), time.time()) == docs[0]["arrival"] - 1
            time.sleep(0.5)
        db.logs.insert_many(docs)
    assert frontier(state.find_one({"_id": "logs"}), time.time()) == docs[0]["arrival"]
