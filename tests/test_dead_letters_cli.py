"""`opslog dead-letters list|replay -c FILE` against a real broker: what is parked is counted
and described, a dry run moves nothing, and a replay moves exactly what the broker confirmed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pika

from tests.consumer_support import bodies, connect, make_records, publish
from tests.helpers import queue_depth, run_opslog, wait_until


def opslog(config: Path, *args: str) -> str:
    """Run `opslog dead-letters ARGS -c CONFIG` to its end; its output."""
    proc = run_opslog("dead-letters", *args, config=config)
    assert proc.wait(timeout=60) == 0, proc.output()
    return proc.output()


def records_queue(amqp_url: str, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    connection = connect(amqp_url)
    try:
        channel = connection.channel()
        out = []
        while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
            out.append((got[2], dict(got[1].headers or {})))
        return out
    finally:
        connection.close()


def test_dead_letters_are_listed_with_count_reason_and_records_and_replayed_only_as_confirmed(
        tmp_path, write_config, amqp_url, names):
    config = write_config(tmp_path)
    assert "0 parked message(s)" in opslog(config, "list")  # declares the topology, like any opslog command
    records = make_records("web-01", 80)
    crashed, refused = bodies(records[:50], 50)[0], bodies(records[50:], 30)[0]
    dlx = f"{names.exchange}.dlx"
    publish(amqp_url, dlx, [crashed], headers={"x-opslog-reason": "crashed the consumer 5 times while processed alone",
                                               "x-opslog-message-id": "m-crashed"})
    publish(amqp_url, dlx, [refused], headers={"x-first-death-reason": "delivery_limit",
                                               "x-death": [{"count": 1, "reason": "delivery_limit"}]})
    publish(amqp_url, dlx, [b"not json"], headers={"x-opslog-reason": "payload is not JSON"})

    listed = opslog(config, "list")
    assert "3 parked message(s)" in listed
    assert "m-crashed  50 record(s)  crashed the consumer 5 times while processed alone" in listed
    assert "30 record(s)  broker: delivery_limit (dead-lettered 1 time(s))" in listed
    assert "unreadable payload  payload is not JSON" in listed
    wait_until(lambda: queue_depth(amqp_url, names.dead_letter_queue) == 3, message="listing removed nothing")

    dry = opslog(config, "replay", "--dry-run")
    assert "dry run: would replay 3 message(s), 80 record(s)" in dry and "3 left in" in dry
    wait_until(lambda: queue_depth(amqp_url, names.dead_letter_queue) == 3, message="a dry run moves nothing")
    assert queue_depth(amqp_url, names.queue) == 0

    assert "replayed 1 message(s), 50 record(s)" in opslog(config, "replay", "--limit", "1")
    assert "replayed 2 message(s), 30 record(s)" in opslog(config, "replay")
    assert queue_depth(amqp_url, names.dead_letter_queue) == 0
    replayed = records_queue(amqp_url, names.queue)
    assert sorted(body for body, _ in replayed) == sorted([crashed, refused, b"not json"])
    for _, headers in replayed:  # a new message: no reason, no broker history
        assert not {"x-opslog-reason", "x-death", "x-first-death-reason"} & set(headers), headers


def test_replay_publishes_to_the_records_queue_only_not_to_other_queues_on_the_exchange(
        tmp_path, write_config, amqp_url, names):
    config = write_config(tmp_path)
    opslog(config, "list")
    other = f"{names.queue}.archive"
    connection = connect(amqp_url)
    try:
        channel = connection.channel()
        channel.queue_declare(other, durable=True)
        channel.queue_bind(other, names.exchange)
        publish(amqp_url, f"{names.exchange}.dlx", [b"parked"], headers={"x-opslog-reason": "why"})
        assert "replayed 1 message(s)" in opslog(config, "replay")
        assert queue_depth(amqp_url, names.queue) == 1
        assert queue_depth(amqp_url, other) == 0, "the archive had its copy from the shipper already"
    finally:
        if connection.is_open:
            try:
                connection.channel().queue_delete(other)
            except pika.exceptions.AMQPError:
                pass
            connection.close()
