"""One nested or huge JSON line stops neither a shipper nor a consumer: real `opslog ship`,
real `opslog consume`, real broker and database."""

from __future__ import annotations

import json

import orjson

from common.amqp import REASON_HEADER
from common.fields import MAX_DEPTH, MAX_KEYS, WHOLE_KEY
from common.record import MAX_FIELDS_DEPTH
from tests.consumer_support import bodies, dead_letters, make_records, publish, wait_attached
from tests.helpers import queue_depth, run_opslog, stop, wait_until


def nested(levels: int) -> str:
    return "[" * levels + "0" + "]" * levels


def test_a_json_line_nested_300_levels_is_stored_bounded_and_flagged_with_every_line_around_it(
        tmp_path, write_config, mongo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    normal = [json.dumps({"ts": f"2026-11-30T04:00:{i % 60:02d}Z", "level": "info", "msg": f"request {i}",
                          "user": {"id": i}}) for i in range(200)]
    deep = '{"level": "error", "msg": "deep", "a": ' + nested(300) + "}"
    wide = json.dumps({f"k{i}": i for i in range(MAX_KEYS + 500)})
    lines = normal[:100] + [deep, wide] + normal[100:]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(tmp_path, shipper={"inputs": [{"paths": [str(logs / "*.log")], "app": "api",
                                                         "format": "json"}]})
    consumer = run_opslog("consume", config=config)
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: mongo_db.logs.count_documents({}) >= len(lines), timeout=30,
                   message=f"all {len(lines)} lines stored")
    finally:
        assert stop(shipper) == 0, shipper.output()
        assert stop(consumer) == 0, consumer.output()

    stored = {d["message"]: d for d in mongo_db.logs.find()}
    assert sorted(stored) == sorted(lines), "every line stored once, the ones after the nested line too"
    assert all("parse_error" not in stored[line] for line in normal)
    assert stored[normal[150]]["fields"]["user"] == {"id": 150}

    doc = stored[deep]
    assert doc["level"] == "error", "what could be parsed is kept"
    assert doc["parse_error"].startswith("fields bounded:") and f"deeper than {MAX_DEPTH} levels" in doc["parse_error"]
    value, depth = doc["fields"]["a"], 1
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert depth == MAX_DEPTH, "structure down to the depth limit"
    assert json.loads(value) == json.loads(nested(300 - MAX_DEPTH + 1)), "the rest, whole, as JSON text"

    doc = stored[wide]
    assert list(doc["fields"]) == [WHOLE_KEY] and json.loads(doc["fields"][WHOLE_KEY]) == json.loads(wide)
    assert f"over {MAX_KEYS}" in doc["parse_error"]


def v2_body(rows: list[str]) -> bytes:
    """A v2 payload written as text: orjson cannot write what a hostile publisher can."""
    return (b'{"v":2,"groups":[{"host":"evil","app":"x","source":"/x.log","received_at":1795660000.0,"records":['
            + ",".join(rows).encode() + b"]}]}")


def test_a_published_record_with_deeply_nested_fields_is_dead_lettered_alone_and_its_neighbours_stored(
        tmp_path, write_config, amqp_url, names, mongo_db):
    """Not through our shipper: straight to the exchange. 300 levels SecantusDB would store (and the
    UI could not show); 1,000 levels pymongo cannot even encode (RecursionError)."""
    rows = {f"r{i}": f'["r{i}",{i},null,"line {i}",null,{{"i":{i}}},null]' for i in range(6)}
    rows["d300"] = '["d300",100,null,"deep",null,{"a":' + nested(300) + "},null]"
    rows["d1000"] = '["d1000",101,null,"deeper",null,{"a":' + nested(1000) + "},null]"
    hostile = [v2_body([rows["r0"], rows["d300"], rows["r1"], rows["r2"]]),
               v2_body([rows["r3"], rows["r4"], rows["d1000"], rows["r5"]])]
    config = write_config(tmp_path, consumer={"batch_max_wait": "0.2s"})
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        neighbours = make_records("web-01", 20)
        publish(amqp_url, names.exchange, [*bodies(neighbours[:10], 10), *hostile, *bodies(neighbours[10:], 10)])
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 26, timeout=20, message="26 valid records stored")
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
    finally:
        assert stop(consumer) == 0, consumer.output()
    assert {d["_id"] for d in mongo_db.logs.find({"host": "evil"})} == {f"r{i}" for i in range(6)}
    assert mongo_db.logs.count_documents({}) == 26

    dead = dead_letters(amqp_url, names.dead_letter_queue)
    assert len(dead) == 2, [h[REASON_HEADER] for _, h in dead]
    parked = [orjson.loads(body) for body, _ in dead]
    assert sorted(r["id"] for p in parked for r in p["records"]) == ["d1000", "d300"], "only the deep records"
    assert all(f"deeper than {MAX_FIELDS_DEPTH} levels" in h[REASON_HEADER] for _, h in dead)
