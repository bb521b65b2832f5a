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


def test_garbage_empty_and_partly_invalid_batches_are_dead_lettered_with_a_reason(tmp_path, write_config, amqp_url,
                                                                                 names, mongo_db):
    before, partly, after = make_records("web-01", 40), make_records("web-01", 6, first=40), \
        make_records("web-01", 40, first=46)
    broken = [r.to_wire() for r in partly]
    del broken[2]["host"]  # one record breaks the schema
    broken[4]["fields"] = {"counter": 2**64 - 1}  # valid JSON, but more than a BSON integer holds
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
            *bodies(after, 20),
        ])
        valid = before + [r for i, r in enumerate(partly) if i not in (2, 4)] + after
        wait_counted(mongo_db, len(valid), timeout=30, what="valid records")
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
    finally:
        assert stop(consumer) == 0, consumer.output()
    assert_stored_exactly_once(mongo_db, valid)

    dead = dead_letters(amqp_url, names.dead_letter_queue)
    reasons = sorted(headers[REASON_HEADER] for _, headers in dead)
    assert len(dead) == 6, reasons
    assert sum("payload is not JSON" in r for r in reasons) == 2, "garbage and an empty body"
    assert sum("holds no records" in r for r in reasons) == 1
    assert sum("not an opslog batch v1" in r for r in reasons) == 1
    schema = next(orjson.loads(body) for body, h in dead if "record field 'host'" in h[REASON_HEADER])
    assert [r["id"] for r in schema["records"]] == [partly[2].id], "only the bad record, ready to re-publish"
    refused = next(orjson.loads(body) for body, h in dead if "BSON" in h[REASON_HEADER])
    assert [r["id"] for r in refused["records"]] == [partly[4].id]
