"""Topology on a real broker: declared idempotently, quorum queues with a delivery
limit when the broker has them, and a message that kills consumers dead-lettered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pika
import pika.exceptions
import pytest

from common.amqp import Subscriber
from common.config import AmqpConfig, load_config
from tests.consumer_support import bodies, connect, dead_letters, make_records, publish
from tests.helpers import queue_depth, run_opslog, stop, wait_until


@pytest.fixture
def amqp_config(tmp_path: Path, write_config: Callable[..., Path]) -> Callable[..., AmqpConfig]:
    """`amqp_config(**amqp_keys)`: the test's broker settings, as opslog reads them."""
    return lambda **amqp: load_config(str(write_config(tmp_path, amqp=amqp))).amqp


def declared_with(amqp_url: str, queue: str, arguments: dict) -> bool:
    """True if `queue` exists with exactly these arguments (the broker refuses any other)."""
    connection = connect(amqp_url)
    try:
        connection.channel().queue_declare(queue, durable=True, arguments=arguments)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 406, exc
        return False
    finally:
        if connection.is_open:
            connection.close()


def subscribe(cfg: AmqpConfig) -> str:
    subscriber = Subscriber(cfg, prefetch=10)
    try:
        subscriber.connect()
        return subscriber.queue_type
    finally:
        subscriber.close()


def test_topology_is_declared_idempotently_as_quorum_queues_with_a_delivery_limit(amqp_config, amqp_url, names):
    cfg = amqp_config(delivery_limit=7)
    assert [subscribe(cfg) for _ in range(3)] == ["quorum"] * 3, "every worker declares it; nothing fails"
    assert declared_with(amqp_url, names.queue, {
        "x-queue-type": "quorum", "x-delivery-limit": 7, "x-dead-letter-exchange": f"{names.exchange}.dlx",
        "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
    assert declared_with(amqp_url, names.dead_letter_queue, {"x-queue-type": "quorum"})
    publish(amqp_url, names.exchange, [b"to the records queue"])
    publish(amqp_url, f"{names.exchange}.dlx", [b"to the dead-letter queue"])
    assert queue_depth(amqp_url, names.queue) == 1
    assert [body for body, _ in dead_letters(amqp_url, names.dead_letter_queue)] == [b"to the dead-letter queue"]


def test_classic_queue_type_declares_classic_queues(amqp_config, amqp_url, names):
    assert subscribe(amqp_config(queue_type="classic")) == "classic"
    assert declared_with(amqp_url, names.queue, {"x-dead-letter-exchange": f"{names.exchange}.dlx"})
    assert not declared_with(amqp_url, names.queue, {"x-queue-type": "quorum"})


def test_auto_uses_queues_that_exist_with_other_arguments_as_they_are(amqp_config, amqp_url, names):
    """E.g. declared classic by an older release: fighting over arguments would stop every worker."""
    connection = connect(amqp_url)
    connection.channel().queue_declare(names.queue, durable=True)
    connection.channel().queue_declare(names.dead_letter_queue, durable=True)
    connection.close()
    cfg = amqp_config()
    assert subscribe(cfg) == "existing"
    publish(amqp_url, names.exchange, [b"still routed"])
    subscriber = Subscriber(cfg, prefetch=10)
    try:
        taken = next(d for d in subscriber.deliveries(inactivity_timeout=5) if d is not None)
        assert taken.body == b"still routed"
    finally:
        subscriber.close()


def test_a_message_that_keeps_killing_consumers_is_dead_lettered_and_the_queue_moves_on(
        tmp_path, write_config, amqp_url, names, mongo_db):
    config = write_config(tmp_path, amqp={"delivery_limit": 2})
    subscribe(load_config(str(config)).amqp)
    publish(amqp_url, names.exchange, [b"the message every consumer dies on"])
    records = make_records("web-01", 50)
    publish(amqp_url, names.exchange, bodies(records, 50))
    for _ in range(3):  # a consumer takes it and dies before acking, three times
        connection = connect(amqp_url)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        method, _, body = channel.basic_get(names.queue, auto_ack=False)
        assert body == b"the message every consumer dies on"
        connection.close()
    consumer = run_opslog("consume", config=config)
    try:
        wait_until(lambda: mongo_db.logs.count_documents({}) == 50, timeout=30, message="the next message stored")
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
    finally:
        assert stop(consumer) == 0, consumer.output()
    [(body, headers)] = dead_letters(amqp_url, names.dead_letter_queue)
    assert body == b"the message every consumer dies on"
    assert headers["x-first-death-reason"] == "delivery_limit"
