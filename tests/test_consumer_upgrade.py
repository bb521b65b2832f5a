"""A rolling upgrade through a real `opslog consume`: old shippers keep sending v1
payloads while new ones send v2, and a line sent in both (an old shipper sent it,
was upgraded, read it again) is stored once, as the same document."""

from __future__ import annotations

from datetime import timedelta

from common.record import to_document
from tests.consumer_support import assert_stored_exactly_once, make_records, publish, wait_attached, wait_counted
from tests.helpers import queue_depth, run_opslog, stop, wait_until
from tests.records import encode_batch


def test_v1_and_v2_batches_are_stored_alike_and_once(tmp_path, write_config, amqp_url, names, mongo_db):
    old, new = make_records("web-01", 300), make_records("web-02", 300)
    resent = old[200:]  # web-01 upgraded and read its last 100 lines again
    config = write_config(tmp_path, consumer={"batch_max_wait": "0.2s"})
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        publish(amqp_url, names.exchange, [
            encode_batch(old[:150], version=1), encode_batch(new[:150]),
            encode_batch(old[150:], version=1), encode_batch(new[150:]),
            encode_batch(resent),
        ])
        wait_counted(mongo_db, len(old) + len(new), timeout=30)
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
    finally:
        assert stop(consumer) == 0, consumer.output()
    assert_stored_exactly_once(mongo_db, old + new)
    stored = {d["_id"]: d for d in mongo_db.logs.find({"_id": {"$in": [old[0].id, new[0].id, old[-1].id]}})}
    for r in (old[0], new[0], old[-1]):
        expected, got = to_document(r.to_wire()), stored[r.id]
        assert got.keys() - {"batch", "arrival"} == expected.keys()  # the consumer's own stamps
        for key in ("ts", "received_at"):  # naive UTC in documents; BSON keeps milliseconds
            assert abs(got.pop(key).replace(tzinfo=None) - expected.pop(key)) < timedelta(milliseconds=1)
        assert {k: v for k, v in got.items() if k not in ("batch", "arrival")} == expected
