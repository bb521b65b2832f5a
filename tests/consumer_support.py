"""What the consumer suites share: records as shippers make them, publishing them
with plain pika, and the exactly-once checks on `logs`, `rollups` and `hosts`.

The checks compute what the database should hold from the records themselves,
not from the code under test, and publish with pika directly for the same reason.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions
from pymongo.database import Database

from common.record import LEVELS, decode_batch, heartbeats, to_document
from consumer.store import Message
from tests.helpers import wait_until
from tests.records import Record, encode_batch, record_id

START = 1795660000.0  # log time of the first record: 2026-11-26
LINES_PER_SECOND = 50  # so a 500-record message spans ten seconds, a few minutes overall


def make_records(host: str, count: int, first: int = 0, app: str = "web", source: str = "/var/log/app.log",
                 received_at: float = START + 3600) -> list[Record]:
    """`count` records of one host's file, lines `first`... with a few levels and parsed fields."""
    out = []
    for n in range(first, first + count):
        line = f"{host} line {n:07d} GET /api/orders/{n} status={200 if n % 7 else 500}"
        raw = line.encode()
        offset = n * 64
        out.append(Record(id=record_id(host, f"fp:{source}", offset, raw), host=host, app=app, source=source,
                          offset=offset, message=line, received_at=received_at + n / 1000,
                          ts=START + n / LINES_PER_SECOND, level=LEVELS[n % 5] if n % 3 else None,
                          fields={"n": n, "status": 200 if n % 7 else 500}))
    return out


def message_docs(records: list[Record], message_id: str) -> Message:
    """The documents of one AMQP message, as the consumer decodes them."""
    return Message(message_id, [{**to_document(r.to_wire()), "batch": message_id} for r in records])


def shippers(hosts: int, per_host: int, per_message: int) -> tuple[list[Record], list[bytes]]:
    """All records of `hosts` shippers and their message bodies, interleaved as live shippers send them."""
    per: list[list[bytes]] = []
    records: list[Record] = []
    for h in range(hosts):
        mine = make_records(f"web-{h:02d}", per_host)
        records += mine
        per.append(bodies(mine, per_message))
    interleaved = [b for group in zip(*per, strict=True) for b in group]
    return records, interleaved


def bodies(records: Sequence[Record], per_message: int) -> list[bytes]:
    return [encode_batch(list(records[i:i + per_message])) for i in range(0, len(records), per_message)]


def connect(amqp_url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(amqp_url)
    params.connection_attempts, params.socket_timeout = 3, 5
    return pika.BlockingConnection(params)


def queued_ids(amqp_url: str, queue: str, take: bool = False) -> list[str]:
    """The ids of the records in the messages waiting in `queue`, in queue order, a record sent
    twice listed twice. `take` acks the messages; otherwise they go back to the queue."""
    connection = connect(amqp_url)
    ids: list[str] = []
    try:
        channel = connection.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=take)
            if method is None:
                return ids
            if (props.headers or {}).get(heartbeats.KIND_HEADER) == heartbeats.KIND:
                continue  # a shipper's per-file heartbeat: no records
            ids += [entry["id"] for entry in decode_batch(body)]
    finally:
        connection.close()


def publish(amqp_url: str, exchange: str, messages: Iterable[bytes], headers: dict[str, Any] | None = None) -> int:
    """Publish persistent messages with confirms, as the shipper does; how many."""
    connection = connect(amqp_url)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, headers=headers)
        count = 0
        for body in messages:
            channel.basic_publish(exchange, "", body, props, mandatory=True)
            count += 1
        return count
    finally:
        if connection.is_open:
            connection.close()


def trickle(amqp_url: str, exchange: str, messages: Sequence[bytes], interval: float) -> threading.Thread:
    """Publish `messages` one every `interval` seconds from a thread, as live shippers do; started."""
    def send() -> None:
        for body in messages:
            publish(amqp_url, exchange, [body])
            time.sleep(interval)

    thread = threading.Thread(target=send, name="shippers")
    thread.start()
    return thread


def dead_letters(amqp_url: str, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Everything in the dead-letter queue (taken off it): (body, headers)."""
    connection = connect(amqp_url)
    try:
        channel = connection.channel()
        out = []
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((body, dict(props.headers or {})))
    finally:
        if connection.is_open:
            connection.close()


def consumers_attached(amqp_url: str, queue: str) -> int:
    """Consumers subscribed to `queue`; 0 while it does not exist yet."""
    connection = connect(amqp_url)
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if connection.is_open:
            connection.close()


def wait_attached(amqp_url: str, queue: str, count: int = 1, timeout: float = 30) -> None:
    """Until `count` consumers read `queue`: they have declared the topology and are taking messages."""
    wait_until(lambda: consumers_attached(amqp_url, queue) >= count, timeout=timeout,
               message=f"{count} consumer(s) attached to {queue}")


def expected_counts(records: Iterable[Record]) -> tuple[Counter[tuple[Any, ...]], Counter[str]]:
    """Rollup counts per (minute, host, app, level) and records per host, from the records themselves."""
    minutes: Counter[tuple[Any, ...]] = Counter()
    hosts: Counter[str] = Counter()
    for r in records:
        ts = r.ts if r.ts is not None else r.received_at
        minute = datetime.fromtimestamp(ts // 60 * 60, UTC)
        minutes[minute, r.host, r.app, r.level] += 1
        hosts[r.host] += 1
    return minutes, hosts


def wait_counted(db: Database[dict[str, Any]], count: int, timeout: float, what: str = "records") -> None:
    """Until `count` records are stored and counted in the rollups (which a batch writes after them)."""
    def done() -> bool:
        return (db.logs.estimated_document_count() >= count
                and sum(r["n"] for r in db.rollups.find({}, {"n": 1})) >= count)
    wait_until(done, timeout=timeout, interval=0.5, message=f"{count} {what} stored and counted")


def assert_stored_exactly_once(db: Database[dict[str, Any]], records: Sequence[Record]) -> None:
    """Each record stored once, nothing else stored, and the rollups and hosts counting each once."""
    stored = {d["_id"] for d in db.logs.find({}, {"_id": 1})}  # `_id` is unique: a set loses nothing
    expected = {r.id for r in records}
    assert stored == expected, f"{len(expected - stored)} records missing, {len(stored - expected)} unexpected"
    minutes, hosts = expected_counts(records)
    rolled: Counter[tuple[Any, ...]] = Counter()
    for r in db.rollups.find({}, {"t": 1, "host": 1, "app": 1, "level": 1, "n": 1}):
        minute = r["t"] if r["t"].tzinfo else r["t"].replace(tzinfo=UTC)
        rolled[minute, r["host"], r["app"], r["level"]] += r["n"]
    assert sum(rolled.values()) == len(expected), "rollups count every stored record once"
    assert rolled == minutes, "each minute's rollup counts its records once"
    assert {h["_id"]: h["records"] for h in db.hosts.find({}, {"records": 1})} == dict(hosts)


def vm_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def unacked(node: Any, queue: str) -> int:
    """Messages of `queue` delivered and not acked yet, on a private RabbitMQNode: AMQP only
    reports ready ones, and "nothing acked early" is about the others, so ask rabbitmqctl."""
    out = node.ctl("-q", "list_queues", "name", "messages_unacknowledged")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue:
            return int(parts[1])
    raise AssertionError(f"queue {queue} not listed by rabbitmqctl:\n{out}")
