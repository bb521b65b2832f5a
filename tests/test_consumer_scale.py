"""Horizontal scale: ten shippers' worth of records (200,000) through three consumer
processes, each taking a share, every record stored and counted exactly once."""

from __future__ import annotations

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

CONSUMERS = 3


@pytest.mark.slow
def test_ten_shippers_worth_of_records_through_three_consumers_are_stored_and_counted_exactly_once(
        tmp_path, write_config, amqp_url, names, mongo_db):
    records, messages = shippers(hosts=10, per_host=20_000, per_message=2000)  # as shippers batch by default
    ports = [free_port() for _ in range(CONSUMERS)]
    consumers = [run_opslog("consume", config=write_config(tmp_path / f"consumer-{i}", consumer={
        "metrics_listen": f"127.0.0.1:{port}"})) for i, port in enumerate(ports)]
    try:
        wait_attached(amqp_url, names.queue, count=CONSUMERS)
        publish(amqp_url, names.exchange, messages)
        wait_counted(mongo_db, len(records), timeout=600)
        assert queue_depth(amqp_url, names.queue) == 0

        def acked_shares() -> list[float] | None:
            """Records each worker stored: it counts a batch once acked, just after its counters."""
            shares = [metric(port, "opslog_consumer_records_stored") or 0 for port in ports]
            return shares if sum(shares) >= len(records) else None

        def counters() -> str:
            return ", ".join(f"{name}={[metric(port, f'opslog_consumer_{name}') for port in ports]}"
                             for name in ("records_stored", "duplicates_skipped", "retries", "reconnects", "requeued"))

        try:
            shares = wait_until(acked_shares, timeout=30, message="every batch acked")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {counters()}") from None
    finally:
        codes = [stop(c, timeout=60) for c in consumers]
    assert codes == [0] * CONSUMERS, [c.output()[-2000:] for c in consumers]
    assert sum(shares) == len(records), f"each record stored by exactly one consumer: {shares}"
    assert all(shares), f"every consumer took a share: {shares}"
    assert_stored_exactly_once(mongo_db, records)
    assert dead_letters(amqp_url, names.dead_letter_queue) == []
