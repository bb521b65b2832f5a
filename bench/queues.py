"""The benchmarks' own view of the private RabbitMQ node (bare pika, no opslog code).

Queue depth comes from a passive `queue_declare` on one long-lived channel: it
counts messages ready in the queue, which is every message published when no
consumer is attached.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import pika
import pika.exceptions
import pika.spec

from common.record import decode_batch, heartbeats


def _params(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = 0  # a benchmark may block the connection for a long while between calls
    params.blocked_connection_timeout = 300
    return params


class Broker:
    def __init__(self, url: str):
        self.url = url
        self.connection = pika.BlockingConnection(_params(url))
        self.channel = self.connection.channel()

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fresh_channel(self) -> None:
        if not self.channel.is_open:
            self.channel = self.connection.channel()

    def _passive(self, queue: str) -> pika.spec.Queue.DeclareOk | None:
        self._fresh_channel()
        try:
            return self.channel.queue_declare(queue, passive=True).method
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return None
            raise

    def depth(self, queue: str) -> int:
        """Messages ready in `queue`; 0 while it does not exist yet."""
        found = self._passive(queue)
        return found.message_count if found else 0

    def consumers(self, queue: str) -> int:
        """Consumers attached to `queue`; 0 while it does not exist yet."""
        found = self._passive(queue)
        return found.consumer_count if found else 0

    def declare_queue(self, queue: str, quorum: bool = False, exchange: str | None = None,
                      routing_key: str = "") -> None:
        """A durable queue, bound to a durable direct `exchange` when one is named."""
        self._fresh_channel()
        args = {"x-queue-type": "quorum"} if quorum else None
        self.channel.queue_declare(queue, durable=True, arguments=args)
        if exchange:
            self.channel.exchange_declare(exchange, "direct", durable=True)
            self.channel.queue_bind(queue, exchange, routing_key)

    def delete(self, queues: Iterable[str] = (), exchanges: Iterable[str] = ()) -> None:
        self._fresh_channel()
        for queue in queues:
            self.channel.queue_delete(queue)
        for exchange in exchanges:
            self.channel.exchange_delete(exchange)

    def publish_confirmed(self, queue: str, bodies: Iterable[bytes], headers: list[dict] | None = None) -> int:
        """Publish persistent messages to `queue` (default exchange), each confirmed before the next."""
        channel = self.connection.channel()
        channel.confirm_delivery()
        sent = 0
        try:
            for i, body in enumerate(bodies):
                props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                             headers=headers[i] if headers else None)
                channel.basic_publish("", queue, body, props, mandatory=True)
                sent += 1
        finally:
            channel.close()
        return sent

    def count_records(self, queue: str, timeout: float = 60) -> tuple[int, int]:
        """(messages, records) in an opslog batch queue, by consuming and acking every message.

        Records are counted from the payloads themselves, not from headers; heartbeats are acked and
        not counted."""
        channel = self.connection.channel()
        messages = records = last_tag = acked = 0
        deadline = time.monotonic() + timeout
        try:
            channel.basic_qos(prefetch_count=200)
            for method, props, body in channel.consume(queue, inactivity_timeout=1.0):
                if method is None:
                    if channel.queue_declare(queue, passive=True).method.message_count == 0 \
                            or time.monotonic() > deadline:
                        break
                    continue
                last_tag = method.delivery_tag
                if (props.headers or {}).get(heartbeats.KIND_HEADER) == heartbeats.KIND:
                    continue  # a shipper's per-file heartbeat: no records
                messages += 1
                records += len(decode_batch(body))
                if messages % 100 == 0:
                    channel.basic_ack(last_tag, multiple=True)
                    acked = last_tag
            if last_tag > acked:
                channel.basic_ack(last_tag, multiple=True)
            channel.cancel()
        finally:
            if channel.is_open:
                channel.close()
        return messages, records
