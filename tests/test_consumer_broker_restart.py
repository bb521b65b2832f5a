"""The broker restarted under load: consumers reconnect by themselves, their unacked
batches are delivered again, and every record is stored exactly once."""

from __future__ import annotations

import threading
import time

import pika.exceptions
import pytest

from tests.consumer_support import (
    assert_stored_exactly_once,
    dead_letters,
    publish,
    shippers,
    wait_attached,
    wait_counted,
)
from tests.helpers import queue_depth, run_opslog, stop


def publish_through_outages(amqp_url: str, exchange: str, messages: list[bytes], stop_at: threading.Event) -> None:
    """Publish each message until the broker confirms it, as a shipper does: a message whose
    confirm was lost in the restart is sent again (its records are stored once anyway)."""
    for body in messages:
        while not stop_at.is_set():
            try:
                publish(amqp_url, exchange, [body])
                break
            except (pika.exceptions.AMQPError, OSError):
                time.sleep(0.5)
        time.sleep(0.4)  # shippers send all through the restart


@pytest.mark.slow
def test_broker_restarted_under_load_stores_every_record_exactly_once(tmp_path, write_config, private_rabbit, names,
                                                                     mongo_db):
    records, messages = shippers(hosts=4, per_host=3000, per_message=300)
    config = write_config(tmp_path, amqp={"url": private_rabbit.url}, consumer={"retry_max_wait": "2s"})
    consumers = [run_opslog("consume", config=config) for _ in range(2)]
    done = threading.Event()
    sender = threading.Thread(target=publish_through_outages,
                              args=(private_rabbit.url, names.exchange, messages, done))
    try:
        wait_attached(private_rabbit.url, names.queue, count=2)
        sender.start()
        wait_counted(mongo_db, len(records) // 4, timeout=60, what="records, a quarter of them, before the restart")
        assert sender.is_alive(), "the restart comes under load"
        private_rabbit.stop()
        time.sleep(2)
        private_rabbit.start()
        sender.join(120)
        assert not sender.is_alive(), "every message confirmed after the restart"
        wait_attached(private_rabbit.url, names.queue, count=2, timeout=60)
        wait_counted(mongo_db, len(records), timeout=120)
        assert queue_depth(private_rabbit.url, names.queue) == 0
        assert all(c.poll() is None for c in consumers), "the consumers rode out the restart"
    finally:
        done.set()
        if sender.ident is not None:
            sender.join()
        codes = [stop(c, timeout=60) for c in consumers]
    assert codes == [0, 0], [c.output()[-2000:] for c in consumers]
    assert_stored_exactly_once(mongo_db, records)
    assert dead_letters(private_rabbit.url, names.dead_letter_queue) == []
