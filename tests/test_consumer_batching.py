"""Batching on a real broker and database: deliveries gathered while a write runs,
up to a count, byte or time bound, stored with one insert, acked with one multiple-ack."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymongo import monitoring

from common.amqp import Subscriber
from common.config import Config, load_config
from consumer.consumer import Consumer
from consumer.store import Store
from tests.consumer_support import (
    assert_stored_exactly_once,
    bodies,
    make_records,
    publish,
    wait_counted,
)
from tests.helpers import queue_depth, wait_until


class AckSpy(Subscriber):
    """The real subscriber, remembering each ack it sends."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.acks: list[tuple[int, bool]] = []

    def ack(self, tag: int, multiple: bool = True) -> None:
        super().ack(tag, multiple)
        self.acks.append((tag, multiple))


class Inserts(monitoring.CommandListener):
    """How many documents each insert command into `logs` carried."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert" and event.command.get("insert") == "logs":
            self.sizes.append(len(event.command["documents"]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def consumer_config(tmp_path: Path, write_config: Callable[..., Path]) -> Callable[..., Config]:
    return lambda **consumer: load_config(str(write_config(tmp_path, consumer=consumer)))


@contextmanager
def running(config: Config, store: type[Store] = Store) -> Iterator[tuple[Consumer, AckSpy, Inserts]]:
    """A Consumer in a thread of this process (so the test can watch its acks and inserts)."""
    subscriber, inserts = AckSpy(config.amqp, config.consumer.prefetch), Inserts()
    consumer = Consumer(config, subscriber, store(config.mongo, listeners=[inserts]))
    thread = threading.Thread(target=consumer.run, name="consumer")
    thread.start()
    try:
        yield consumer, subscriber, inserts
    finally:
        consumer.stop()
        thread.join(30)
        assert not thread.is_alive(), "the consumer stops within its shutdown timeout"


def prefill(config: Config, messages: list[bytes]) -> None:
    """The topology as opslog declares it, then `messages` waiting in the queue."""
    subscriber = Subscriber(config.amqp, 1)
    subscriber.connect()
    subscriber.close()
    publish(config.amqp.url, config.amqp.exchange, messages)


def assert_cut_at(sizes: list[int], bound: int) -> None:
    """Twelve 100-record messages waiting, cut into batches of `bound` records. The first batch
    may be short: a batch is written as soon as nothing more is waiting, and the broker may not
    have pushed the second message yet when the first is taken."""
    assert sum(sizes) == 1200 and max(sizes) == bound, sizes
    assert all(n == bound for n in sizes[1:-1]), f"full batches between the first and the last: {sizes}"


def test_batches_are_cut_by_record_count_stored_with_one_insert_and_acked_with_one_multiple_ack(
        consumer_config, mongo_db):
    config = consumer_config(prefetch=50, batch_max_records=300, batch_max_wait="30s")
    records = make_records("web-01", 1200)
    prefill(config, bodies(records, 100))
    with running(config) as (_, subscriber, inserts):
        wait_until(lambda: subscriber.acks and subscriber.acks[-1][0] == 12, timeout=30, message="all acked")
    assert_cut_at(inserts.sizes, 300)
    assert [multiple for _, multiple in subscriber.acks] == [True] * len(inserts.sizes), "one multiple-ack per batch"
    assert [tag for tag, _ in subscriber.acks] == list(itertools.accumulate(n // 100 for n in inserts.sizes))
    assert_stored_exactly_once(mongo_db, records)
    assert queue_depth(config.amqp.url, config.amqp.queue) == 0, "nothing came back when the consumer left"


def test_batches_are_cut_by_bytes(consumer_config, mongo_db):
    records = make_records("web-01", 1200)
    messages = bodies(records, 100)
    config = consumer_config(prefetch=50, batch_max_records=100_000, batch_max_wait="30s",
                             batch_max_bytes=int(len(messages[0]) * 2.5))
    prefill(config, messages)
    with running(config) as (_, subscriber, inserts):
        wait_until(lambda: subscriber.acks and subscriber.acks[-1][0] == 12, timeout=30, message="all acked")
    assert_cut_at(inserts.sizes, 300)
    assert_stored_exactly_once(mongo_db, records)


def test_a_trickle_of_messages_is_written_as_it_arrives_not_held_for_the_time_bound(consumer_config, mongo_db):
    config = consumer_config(batch_max_wait="1h")
    records = make_records("web-01", 200)
    prefill(config, [])
    acked_before_last_publish = False
    with running(config) as (_, subscriber, inserts):
        wait_until(lambda: subscriber.connected, timeout=10, message="consumer connected")
        for body in bodies(records, 10):  # never idle: an idle timeout would not flush it either
            acked_before_last_publish = bool(subscriber.acks)
            publish(config.amqp.url, config.amqp.exchange, [body])
            time.sleep(0.1)
        wait_counted(mongo_db, 200, timeout=10)
    assert acked_before_last_publish, "the first messages were stored while the trickle went on"
    assert len(inserts.sizes) > 1
    assert_stored_exactly_once(mongo_db, records)


class SlowStore(Store):
    """A database that takes 0.4 s per write."""

    def write(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.4)
        return super().write(*args, **kwargs)


def test_messages_arriving_while_a_write_runs_are_written_together(consumer_config, mongo_db):
    """Batches grow with the load: one write per message would fall behind a slow database."""
    config = consumer_config(batch_max_wait="1h")
    records = make_records("web-01", 200)
    prefill(config, [])
    with running(config, store=SlowStore) as (_, subscriber, inserts):
        wait_until(lambda: subscriber.connected, timeout=10, message="consumer connected")
        for body in bodies(records, 10):
            publish(config.amqp.url, config.amqp.exchange, [body])
            time.sleep(0.05)
        wait_counted(mongo_db, 200, timeout=20)
    assert len(inserts.sizes) <= 8, f"20 messages in 1 s, 0.4 s per write: a few batches, got {inserts.sizes}"
    assert_stored_exactly_once(mongo_db, records)


def test_a_lone_message_is_stored_and_acked_without_waiting_for_the_time_bound(consumer_config, mongo_db):
    config = consumer_config(batch_max_wait="1h")
    records = make_records("web-01", 10)
    prefill(config, [])
    with running(config) as (_, subscriber, _):
        wait_until(lambda: subscriber.connected, timeout=10, message="consumer connected")
        publish(config.amqp.url, config.amqp.exchange, bodies(records, 10))
        wait_until(lambda: subscriber.acks, timeout=10, message="the message acked")
    assert_stored_exactly_once(mongo_db, records)
    assert queue_depth(config.amqp.url, config.amqp.queue) == 0
