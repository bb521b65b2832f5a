"""SIGTERM: stop consuming, finish and ack the batch in hand (within the shutdown
timeout), exit 0; whatever was not stored is still in the queue."""

from __future__ import annotations

import time

import pymongo
import pytest

from tests.consumer_support import (
    assert_stored_exactly_once,
    publish,
    queued_ids,
    shippers,
    wait_attached,
    wait_counted,
)
from tests.helpers import queue_depth, run_opslog, stop, wait_until


@pytest.mark.slow
def test_sigterm_mid_stream_finishes_the_batch_in_hand_exits_0_and_loses_nothing(tmp_path, write_config, amqp_url,
                                                                                 names, mongo_db):
    records, messages = shippers(hosts=4, per_host=3000, per_message=250)
    config = write_config(tmp_path, consumer={"batch_max_records": 1000})
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        publish(amqp_url, names.exchange, messages)
        wait_until(lambda: mongo_db.logs.estimated_document_count() > 0, timeout=30, message="storing started")
    finally:
        assert stop(consumer) == 0, consumer.output()
    stored = {d["_id"] for d in mongo_db.logs.find({}, {"_id": 1})}
    waiting = set(queued_ids(amqp_url, names.queue))
    assert 0 < len(stored) < len(records), "stopped mid-stream"
    assert stored | waiting == {r.id for r in records}, "every record is stored or still queued"
    assert not stored & waiting, "the batch in hand was finished and acked, none half done"

    drain = run_opslog("consume", config=config)
    try:
        wait_counted(mongo_db, len(records), timeout=60, what="records, the rest by the next consumer,")
    finally:
        assert stop(drain) == 0, drain.output()
    assert_stored_exactly_once(mongo_db, records)


def test_sigterm_while_the_database_is_down_exits_0_at_the_shutdown_timeout_and_keeps_the_batch_queued(
        tmp_path, write_config, amqp_url, names, private_mongo):
    records, messages = shippers(hosts=2, per_host=200, per_message=100)
    config = write_config(tmp_path, mongo={"uri": private_mongo.uri}, consumer={"shutdown_timeout": "3s"})
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        private_mongo.stop()
        publish(amqp_url, names.exchange, messages)
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="messages taken")
        time.sleep(1)
    finally:
        began = time.monotonic()
        code = stop(consumer)
        took = time.monotonic() - began
        private_mongo.start()
    assert code == 0, consumer.output()
    # 3 s of shutdown timeout, plus at most one database attempt already under way (5 s server selection)
    assert took < 10, f"the shutdown timeout bounds the wait for the database: {took:.1f}s"
    assert queue_depth(amqp_url, names.queue) == len(messages), "the unstored batch went back to the queue"

    drain = run_opslog("consume", config=config)
    db = pymongo.MongoClient(private_mongo.uri)[names.database]
    try:
        wait_counted(db, len(records), timeout=60)
        assert_stored_exactly_once(db, records)
    finally:
        db.client.close()
        assert stop(drain) == 0, drain.output()
