"""Record ids and the wire forms: same line, same id; both payload versions give the same
documents; a bad payload is PoisonMessage, a bad record a reason, never a crash."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from common.errors import PoisonMessage
from common.record import BatchBuilder, decode_batch, decode_documents, encode_rejected, row, to_document, to_entry
from consumer.tally import tally
from tests.records import Record, encode_batch, record_id


def test_the_same_line_read_again_gets_the_same_id():
    assert record_id("web-01", "fp", 120, b"GET /") == record_id("web-01", "fp", 120, b"GET /")


def test_ids_are_those_already_stored():
    """Ids are stored: if they changed, lines re-read across an upgrade would be stored twice."""
    assert record_id("web-01", "fp", 120, b"GET /") == "91136c9fabc53d2ee473d09c"
    assert record_id("web-01", "0123456789abcdef", 10**12, "\u2603".encode()) == "feacd7da6246226ef9c1a094"


@pytest.mark.parametrize("change", [("web-02", "fp", 120, b"GET /"), ("web-01", "fp2", 120, b"GET /"),
                                    ("web-01", "fp", 121, b"GET /"), ("web-01", "fp", 120, b"GET /x")])
def test_host_file_offset_or_content_changes_the_id(change):
    assert record_id(*change) != record_id("web-01", "fp", 120, b"GET /")


def record(**overrides) -> Record:
    base = dict(id="a" * 24, host="h", app="a", source="/var/log/a.log", offset=0, message="hi",
                received_at=1795660000.5)
    return Record(**{**base, **overrides})


RECORDS = [record(level="error", fields={"k": 1}, ts=1795650000.0),
           record(id="b" * 24, offset=3, parse_error="no match"),
           record(id="c" * 24, offset=9, source="/var/log/b.log", ts=1795650000.0),  # another group
           record(id="d" * 24, offset=12, host="h2", received_at=1795660001.0, level="debug")]


@pytest.fixture
def far_from_utc(monkeypatch):
    """The local time zone set to one 5 hours behind UTC, for the test only."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_document_times_are_utc_whatever_the_local_time_zone(far_from_utc):
    docs, _ = decode_documents(encode_batch(RECORDS[:1]))
    assert time.localtime(1795650000.0).tm_hour == 18, "the local zone is in effect"
    assert docs[0]["ts"] == datetime(2026, 11, 25, 23, 40), "naive, in UTC"
    assert to_entry(docs[0])["ts"] == 1795650000.0
    assert [c.key for c in tally(docs).minutes] == ["1795650000|h|a|error"]


@pytest.mark.parametrize("version", [1, 2])
def test_batch_round_trips_into_documents(version):
    docs, rejected = decode_documents(encode_batch(RECORDS[:2], version))
    assert rejected == []
    assert docs[0]["_id"] == "a" * 24 and docs[0]["level"] == "error" and docs[0]["fields"] == {"k": 1}
    assert docs[0]["ts"] == datetime.fromtimestamp(1795650000.0, UTC).replace(tzinfo=None), "naive, in UTC"
    assert docs[1]["ts"] == docs[1]["received_at"], "a line without a time gets its ingest time"
    assert docs[1]["parse_error"] == "no match" and "level" not in docs[1] and docs[1]["fields"] == {}


def test_v1_and_v2_give_the_same_documents_key_for_key():
    v1, v2 = (decode_documents(encode_batch(RECORDS, version)) for version in (1, 2))
    assert v1 == v2 == ([to_document(r.to_wire()) for r in RECORDS], [])
    assert [list(doc.items()) for doc in v1[0]] == [list(doc.items()) for doc in v2[0]], "same keys, same order"


def test_v2_writes_what_records_share_once_per_group():
    payload = orjson.loads(encode_batch(RECORDS))
    assert payload["v"] == 2
    assert [(g["host"], g["source"], len(g["records"])) for g in payload["groups"]] == [
        ("h", "/var/log/a.log", 2), ("h", "/var/log/b.log", 1), ("h2", "/var/log/a.log", 1)]
    assert payload["groups"][0]["records"][1] == ["b" * 24, 3, None, "hi", None, {}, "no match"]


def test_any_payload_reads_as_v1_entries():
    for version in (1, 2):
        entries = decode_batch(encode_batch(RECORDS, version))
        assert [e["id"] for e in entries] == [r.id for r in RECORDS]
        assert [to_document(e) for e in entries] == [to_document(r.to_wire()) for r in RECORDS]


@pytest.mark.parametrize("body", [b"\xff\xfe garbage", b"[1,2]", b'{"v": 99, "records": []}', b'{"v": 1}',
                                  b'{"v": true, "records": []}', b'{"v": 2}', b'{"v": 2, "groups": {}}',
                                  b'{"v": 2, "groups": [[]]}', b'{"v": 2, "groups": [{"host": "h"}]}',
                                  b'{"v": 2, "groups": [{"records": {}}]}'])
def test_unusable_payload_is_poison(body):
    with pytest.raises(PoisonMessage):
        decode_documents(body)
    with pytest.raises(PoisonMessage):
        decode_batch(body)


@pytest.mark.parametrize("entry", ["text", {"id": "x"}, {**record().to_wire(), "offset": "7"},
                                   {**record().to_wire(), "level": "loud"}, {**record().to_wire(), "ts": 1e20}])
def test_record_breaking_the_schema_is_poison_with_a_reason(entry):
    with pytest.raises(PoisonMessage) as info:
        to_document(orjson.loads(orjson.dumps(entry)))
    assert info.value.reason


GROUP = {"host": "h", "app": "a", "source": "/var/log/a.log", "received_at": 1795660000.5}
GOOD = ["a" * 24, 0, None, "hi", None, None, None]


def v2(*rows, **group) -> bytes:
    return orjson.dumps({"v": 2, "groups": [{**GROUP, **group, "records": [GOOD, *rows]}]})


@pytest.mark.parametrize(("bad", "reason"), [
    (["b" * 24, 1, None, "hi", None, None], "not an array of 7 values"),
    ([*GOOD, "extra"], "not an array of 7 values"),
    ({"id": "b" * 24}, "not an array of 7 values"),
    ("text", "not an array of 7 values"),
    ([None, 1, None, "hi", None, None, None], "'id' is missing"),
    ([7, 1, None, "hi", None, None, None], "'id' is missing or not str"),
    (["b" * 24, True, None, "hi", None, None, None], "'offset' is missing or not int"),
    (["b" * 24, 1.0, None, "hi", None, None, None], "'offset' is missing or not int"),
    (["b" * 24, "1", None, "hi", None, None, None], "'offset' is missing or not int"),
    (["b" * 24, 1, None, 5, None, None, None], "'message' is missing or not str"),
    (["b" * 24, 1, True, "hi", None, None, None], "'ts' must be epoch seconds"),
    (["b" * 24, 1, "2024-01-01", "hi", None, None, None], "'ts' must be epoch seconds"),
    (["b" * 24, 1, 1e20, "hi", None, None, None], "'ts' is out of range"),
    (["b" * 24, 1, None, "hi", "loud", None, None], "'level' is not one of"),
    (["b" * 24, 1, None, "hi", ["error"], None, None], "'level' is not one of"),
    (["b" * 24, 1, None, "hi", None, ["k", 1], None], "'fields' must be an object"),
    (["b" * 24, 1, None, "hi", None, "k=1", None], "'fields' must be an object"),
])
def test_a_bad_v2_record_gets_a_reason_and_the_rest_is_stored(bad, reason):
    docs, rejected = decode_documents(v2(bad))
    assert [d["_id"] for d in docs] == ["a" * 24]
    assert len(rejected) == 1 and reason in rejected[0][1], rejected


@pytest.mark.parametrize(("group", "reason"), [
    ({"host": 5}, "'host' is missing or not str"), ({"app": None}, "'app' is missing or not str"),
    ({"source": ["/x"]}, "'source' is missing or not str"), ({"received_at": True}, "'received_at' must be"),
    ({"received_at": "now"}, "'received_at' must be"), ({"received_at": -1e20}, "'received_at' is out of range"),
])
def test_a_bad_group_rejects_each_of_its_records_with_the_reason(group, reason):
    docs, rejected = decode_documents(v2(["b" * 24, 1, None, "hi", None, None, None], **group))
    assert docs == []
    assert [entry["id"] for entry, _ in rejected] == ["a" * 24, "b" * 24]
    assert all(reason in why for _, why in rejected), rejected


def test_a_group_without_its_shared_fields_rejects_its_records():
    body = orjson.dumps({"v": 2, "groups": [{"records": [GOOD]}]})
    assert decode_documents(body) == ([], [({"id": "a" * 24, "offset": 0, "message": "hi"},
                                            "record field 'host' is missing or not str")])


def test_rejected_records_make_a_payload_that_can_be_published_again():
    body = v2(["b" * 24, True, None, "hi", None, None, None], ["c" * 24, 2, None, "hi", "loud", None, None])
    _, rejected = decode_documents(body)
    dead = encode_rejected(rejected)
    assert orjson.loads(dead)["reasons"] == [reason for _, reason in rejected]
    assert decode_documents(dead) == ([], rejected), "read again, still broken the same way"
    fixed = orjson.loads(dead)
    fixed["records"][0]["offset"], fixed["records"][1]["level"] = 1, "info"
    docs, again = decode_documents(orjson.dumps(fixed))
    assert again == [] and [(d["_id"], d["offset"], d.get("level")) for d in docs] == [
        ("b" * 24, 1, None), ("c" * 24, 2, "info")]


def test_a_refused_document_goes_back_to_its_entry():
    doc = decode_documents(encode_batch(RECORDS[:1]))[0][0]
    assert to_document(to_entry({**doc, "batch": "m1"})) == doc


def test_a_record_orjson_cannot_write_goes_raw_and_flagged_without_costing_its_batch():
    deep: Any = 0
    for _ in range(300):
        deep = [deep]
    builder = BatchBuilder()
    rows = builder.group("web-01", "api", "/var/log/api.log", 1795660000.0)
    rows.append(row("a", 0, None, "before", "info", {"n": 1}, None))
    rows.append(row("b", 7, None, "deep", "error", {"a": deep}, None))
    rows.append(row("c", 12, None, "huge", None, {"n": 2**64}, "bad line"))
    rows.append(row("d", 20, None, "after", None, {"n": 2}, None))
    entries = {e["id"]: e for e in decode_batch(builder.encode())}
    assert entries["a"]["fields"] == {"n": 1} and entries["d"]["fields"] == {"n": 2}
    assert "fields" not in entries["b"] and entries["b"]["message"] == "deep" and entries["b"]["level"] == "error"
    assert "Recursion limit" in entries["b"]["parse_error"] and "kept raw" in entries["b"]["parse_error"]
    assert entries["c"]["parse_error"].startswith("bad line; fields cannot be encoded")
