"""Consumers killed with SIGKILL mid-batch, again and again: every record is stored
exactly once and the rollup and host counters stay exact."""

from __future__ import annotations

import random
import signal
import time

import pytest

from common.localservices import free_port
from tests.consumer_support import (
    assert_stored_exactly_once,
    dead_letters,
    publish,
    shippers,
    wait_attached,
    wait_counted,
)
from tests.helpers import metric, queue_depth, run_opslog, stop, wait_until

KILLS = 6


@pytest.mark.slow
def test_a_consumer_killed_mid_batch_again_and_again_stores_and_counts_each_record_exactly_once(
        tmp_path, write_config, amqp_url, names, mongo_db):
    records, messages = shippers(hosts=4, per_host=3000, per_message=300)
    # The broker's default delivery limit (5) stays: a message in the victim's hands at several
    # kills is requeued as a suspect, not dead-lettered (tests/test_consumer_kill_loop.py).
    port = free_port()
    steady = run_opslog("consume", config=write_config(tmp_path / "steady",
                                                       consumer={"metrics_listen": f"127.0.0.1:{port}"}))
    config = write_config(tmp_path / "victim")
    wait_attached(amqp_url, names.queue)
    publish(amqp_url, names.exchange, messages)
    rng = random.Random(4)
    try:
        for _ in range(KILLS):
            victim = run_opslog("consume", config=config)
            wait_attached(amqp_url, names.queue, count=2)
            time.sleep(rng.uniform(0.3, 1.5))  # inside a batch most of the time: writes take seconds here
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            if mongo_db.logs.estimated_document_count() >= len(records):
                break
        wait_counted(mongo_db, len(records), timeout=120, what="records, the rest by the steady consumer,")
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=30, message="queue drained")
        assert metric(port, "opslog_consumer_duplicates_skipped"), \
            "some kills landed between a batch's insert and its ack: its records came back as duplicates"
    finally:
        assert stop(steady, timeout=60) == 0, steady.output()
    assert_stored_exactly_once(mongo_db, records)
    assert dead_letters(amqp_url, names.dead_letter_queue) == []
