"""The database stopped for a minute under load: records wait in the broker, the
consumer holds no more than its prefetch window, acks nothing it has not stored,
and carries on by itself when the database is back."""

from __future__ import annotations

import time

import pymongo
import pytest

from tests.consumer_support import (
    assert_stored_exactly_once,
    publish,
    shippers,
    trickle,
    unacked,
    vm_rss_mib,
    wait_attached,
    wait_counted,
)
from tests.helpers import queue_depth, run_opslog, stop, wait_until

OUTAGE_SECONDS = 60
PREFETCH = 8


@pytest.mark.slow
def test_database_down_for_a_minute_under_load_loses_nothing_acks_nothing_early_and_resumes_by_itself(
        tmp_path, write_config, private_rabbit, private_mongo, names):
    records, messages = shippers(hosts=4, per_host=2500, per_message=250)  # 40 messages
    before, during = messages[:8], messages[8:]
    config = write_config(tmp_path, amqp={"url": private_rabbit.url}, mongo={"uri": private_mongo.uri},
                          consumer={"prefetch": PREFETCH, "retry_max_wait": "5s"})
    db = pymongo.MongoClient(private_mongo.uri, serverSelectionTimeoutMS=30000)[names.database]
    consumer = run_opslog("consume", config=config)

    def in_broker() -> tuple[int, int]:
        """(ready, unacked) messages of the records queue; the broker's unacked count lags up to 5 s."""
        return queue_depth(private_rabbit.url, names.queue), unacked(private_rabbit, names.queue)

    try:
        wait_attached(private_rabbit.url, names.queue)
        publish(private_rabbit.url, names.exchange, before)
        wait_until(lambda: db.logs.estimated_document_count() == len(before) * 250, timeout=60,
                   message="the first messages stored")
        wait_until(lambda: in_broker() == (0, 0), timeout=30, message="and acked")
        rss_before = vm_rss_mib(consumer.pid)

        private_mongo.stop()
        outage_began = time.monotonic()
        # Shippers keep sending all through the first half of the outage.
        sender = trickle(private_rabbit.url, names.exchange, during, interval=0.7)
        rss = []
        while time.monotonic() - outage_began < OUTAGE_SECONDS:
            rss.append(vm_rss_mib(consumer.pid))
            time.sleep(1)
        sender.join()
        assert consumer.poll() is None, "the consumer rides out the outage"
        ready, held = in_broker()
        assert held == PREFETCH, "the consumer holds exactly its prefetch window"
        assert ready + held == len(during), "every message sent during the outage is still in the broker"
        assert max(rss) - rss_before < 40, f"memory stays bounded: {rss_before:.0f} MiB -> {max(rss):.0f} MiB"
        assert rss[-1] - rss[len(rss) // 2] < 5, f"and flat while the outage lasts: {rss}"

        private_mongo.start()  # the same consumer process, never restarted, picks up again
        wait_counted(db, len(records), timeout=120, what="records, all of them, after the outage")
        wait_until(lambda: in_broker() == (0, 0), timeout=30, message="all acked")
        assert_stored_exactly_once(db, records)
    finally:
        db.client.close()
        private_mongo.start()  # if the test failed midway: the consumer's stop must not wait on it
        assert stop(consumer, timeout=60) == 0, consumer.output()
