"""pika reads a large message in frame-sized socket reads, not 4 KiB ones (common.amqp.RECV_BYTES)."""

from __future__ import annotations

import os

from pika.adapters.utils import io_services_utils

from common.amqp import RECV_BYTES, Subscriber
from common.config import AmqpConfig
from tests.consumer_support import publish


def test_a_one_megabyte_message_arrives_in_a_few_frame_sized_reads(amqp_url, names, monkeypatch):
    reads: list[int] = []
    recv = io_services_utils._AsyncTransportBase._sigint_safe_recv

    def counted(sock, max_bytes):  # a staticmethod in pika: no self
        data = recv(sock, max_bytes)
        reads.append(len(data))
        return data

    monkeypatch.setattr(io_services_utils._AsyncTransportBase, "_sigint_safe_recv", staticmethod(counted))
    subscriber = Subscriber(AmqpConfig(urls=(amqp_url,), exchange=names.exchange, queue=names.queue,
                                       dead_letter_queue=names.dead_letter_queue), prefetch=1)
    body = os.urandom(1024 * 1024)
    try:
        subscriber.connect()
        publish(amqp_url, names.exchange, [body])
        reads.clear()
        delivery = next(d for d in subscriber.deliveries(inactivity_timeout=5) if d is not None)
        assert delivery.body == body
        subscriber.ack(delivery.tag)
    finally:
        subscriber.close()
    assert max(reads) > 4096, f"pika ignores RECV_BYTES ({RECV_BYTES}): largest read {max(reads)} B"
    assert len(reads) < 100, f"{len(reads)} socket reads for 1 MiB; 4 KiB reads would take 256"

