"""Poison through a real `opslog consume`: what can never be stored goes to the
dead-letter queue with its reason, everything valid around it is stored, and the
queue keeps moving."""

from __future__ import annotations

import orjson

from common.amqp import REASON_HEADER
from tests.consumer_support import (
    assert_stored_exactly_once,
    bodies,
    dead_letters,
    make_records,
    publish,
    wait_attached,
    wait_counted,
)
from tests.helpers import queue_depth, run_opslog, stop, wait_until
from tests.records import encode_batch


def test_garbage_empty_and_partly_invalid_batches_are_dead_lettered_with_a_reason(tmp_path, write_config, amqp_url,
                                                                                 names, mongo_db):
    before, partly, partly_v2, after = make_records("web-01", 40), make_records("web-01", 6, first=40), \
        make_records("web-01", 5, first=46), make_records("web-01", 40, first=51)
    broken = [r.to_wire() for r in partly]  # a v1 batch, as older shippers send
    del broken[2]["host"]  # one record breaks the schema
    broken[4]["fields"] = {"counter": 2**64 - 1}  # valid JSON, but more than a BSON integer holds
    broken_v2 = orjson.loads(encode_batch(partly_v2))
    rows = [rec for group in broken_v2["groups"] for rec in group["records"]]
    rows[1][1] = True  # a bool is no offset
    del rows[3][-1]  # an array too short
    config = write_config(tmp_path, consumer={"batch_max_wait": "0.2s"})
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        publish(amqp_url, names.exchange, [
            *bodies(before, 20),
            b"\x00\x01 not json at all",
            b"",
            orjson.dumps({"v": 1, "records": []}),
            orjson.dumps({"v": 99, "records": [partly[0].to_wire()]}),
            orjson.dumps({"v": 1, "records": broken}),
            orjson.dumps({"v": 2, "groups": {"host": "web-01"}}),
            orjson.dumps(broken_v2),
            *bodies(after, 20),
        ])
        valid = before + [r for i, r in enumerate(partly) if i not in (2, 4)] + \
            [r for i, r in enumerate(partly_v2) if i not in (1, 3)] + after
        wait_counted(mongo_db, len(valid), timeout=30, what="valid records")
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
    finally:
        assert stop(consumer) == 0, consumer.output()
    assert_stored_exactly_once(mongo_db, valid)

    dead = dead_letters(amqp_url, names.dead_letter_queue)
    reasons = sorted(headers[REASON_HEADER] for _, headers in dead)
    assert len(dead) == 8, reasons
    assert sum("payload is not JSON" in r for r in reasons) == 2, "garbage and an empty body"
    assert sum("holds no records" in r for r in reasons) == 1
    assert sum("not an opslog batch v1 or v2" in r for r in reasons) == 1
    assert sum("no 'groups' list" in r for r in reasons) == 1
    schema = next(orjson.loads(body) for body, h in dead if "record field 'host'" in h[REASON_HEADER])
    assert [r["id"] for r in schema["records"]] == [partly[2].id], "only the bad record, ready to re-publish"
    refused = next(orjson.loads(body) for body, h in dead if "BSON" in h[REASON_HEADER])
    assert [r["id"] for r in refused["records"]] == [partly[4].id]
    v2 = next(orjson.loads(body) for body, h in dead if "'offset'" in h[REASON_HEADER])
    assert v2["reasons"] == ["record field 'offset' is missing or not int", "record is not an array of 7 values"]
    assert v2["records"][0]["id"] == partly_v2[1].id and v2["records"][0]["host"] == "web-01", "a v1 entry"
    assert v2["records"][1]["record"][0] == partly_v2[3].id, "kept whole"
