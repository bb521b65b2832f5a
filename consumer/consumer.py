"""The consumer's loop: take batches from RabbitMQ, store them, then ack.

Deliveries are gathered until a count, byte or time bound, decoded into
documents, written with one `Store.write` (retried with capped exponential
backoff and jitter while the database is unavailable), and only then acked with
one multiple-ack. Nothing is acked before it is stored; a redelivery is stored
again harmlessly (deterministic ids). A payload that can never be stored goes
to the dead-letter queue with its reason, before the ack, so it neither blocks
the queue nor loops.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from common.amqp import Delivery, Subscriber
from common.config import Config
from common.errors import BrokerUnavailable, PoisonMessage, StoreUnavailable
from common.record import PAYLOAD_VERSION, decode_batch, to_document
from consumer.metrics import ConsumerMetrics
from consumer.store import Message, Store

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """Deliveries taken but not yet stored and acked."""
    messages: list[Message] = field(default_factory=list)
    dead: list[tuple[bytes, str, dict[str, Any]]] = field(default_factory=list)  # body, reason, headers
    last_tag: int = 0
    records: int = 0
    bytes: int = 0
    started: float = 0.0

    def __bool__(self) -> bool:
        return self.last_tag != 0


class Consumer:
    def __init__(self, config: Config, subscriber: Subscriber, store: Store, metrics: ConsumerMetrics | None = None):
        self.cfg = config.consumer
        self.subscriber = subscriber
        self.store = store
        self.metrics = metrics or ConsumerMetrics()
        self.pending = Pending()
        self.stopping = threading.Event()
        self.stop_deadline: float | None = None

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.stop_deadline = time.monotonic() + self.cfg.shutdown_timeout
            self.stopping.set()

    def run(self) -> None:
        self._retry(self.store.init, StoreUnavailable, "database")
        while not self.stopping.is_set():
            try:
                self._retry(self.subscriber.connect, BrokerUnavailable, "broker")
                if self.stopping.is_set():
                    break
                self._consume()
            except BrokerUnavailable as exc:
                # Unacked deliveries return to the queue when the connection drops; drop our copies.
                log.warning("broker failure (%s); %d unacked deliveries will be redelivered", exc,
                            len(self.pending.messages) + len(self.pending.dead))
                self.pending = Pending()
                self.metrics.reconnects.inc()
        self.subscriber.close()
        self.store.close()
        log.info("consumer stopped")

    def _consume(self) -> None:
        for delivery in self.subscriber.deliveries(inactivity_timeout=min(self.cfg.batch_max_wait, 0.5)):
            if delivery is not None:
                self._take(delivery)
            if self.pending and (delivery is None or self._full()):
                self._flush()
            if self.stopping.is_set():
                self.subscriber.cancel()
                if self.pending:
                    self._flush()
                return

    def _full(self) -> bool:
        p = self.pending
        return (p.records >= self.cfg.batch_max_records or p.bytes >= self.cfg.batch_max_bytes
                or time.monotonic() - p.started >= self.cfg.batch_max_wait)

    def _take(self, delivery: Delivery) -> None:
        p = self.pending
        if not p:
            p.started = time.monotonic()
        p.last_tag = delivery.tag
        p.bytes += len(delivery.body)
        message_id = hashlib.blake2b(delivery.body, digest_size=12).hexdigest()
        try:
            entries = decode_batch(delivery.body)
        except PoisonMessage as exc:
            p.dead.append((delivery.body, exc.reason, delivery.headers))
            return
        docs, bad = [], []
        for entry in entries:
            try:
                doc = to_document(entry)
            except PoisonMessage as exc:
                bad.append((entry, exc.reason))
                continue
            doc["batch"] = message_id
            docs.append(doc)
        if bad:
            p.dead.append(_dead_batch(bad, delivery.headers))
        p.messages.append(Message(message_id, docs))
        p.records += len(docs)

    def _flush(self) -> None:
        p, self.pending = self.pending, Pending()
        started = time.monotonic()
        result = self._retry(lambda: self.store.write(p.messages), StoreUnavailable, "database")
        if result is None:  # shutting down and the database never came back: leave them unacked
            log.warning("shutdown timeout: %d records left unacked for redelivery", p.records)
            return
        dead = list(p.dead)
        if result.rejected:
            rejected = [(doc, reason) for m in p.messages for doc in m.docs
                        if (reason := result.rejected.get(doc["_id"]))]
            dead.append(_dead_batch([(_wire(doc), reason) for doc, reason in rejected], {}))
        for body, reason, headers in dead:
            log.warning("dead-lettering a message: %s", reason)
            self.subscriber.dead_letter(body, reason, headers)
        self.subscriber.ack(p.last_tag, multiple=True)
        self.metrics.stored.inc(result.inserted)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.dead_lettered.inc(len(dead))
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def _retry(self, fn: Any, error: type[Exception], what: str) -> Any:
        def before_sleep(rs: Any) -> None:
            self.metrics.retries.inc()
            log.warning("%s unavailable (%s); retrying in %.1fs", what, rs.outcome.exception(), rs.upcoming_sleep)

        retrying = Retrying(retry=retry_if_exception_type(error), stop=lambda _: self._abandoned(),
                            wait=wait_exponential_jitter(initial=0.2, max=self.cfg.retry_max_wait, jitter=0.5),
                            sleep=self._sleep, before_sleep=before_sleep, retry_error_callback=lambda rs: None)
        return retrying(fn)

    def _abandoned(self) -> bool:
        """Retry forever, unless we are shutting down and the shutdown deadline passed."""
        return self.stop_deadline is not None and time.monotonic() >= self.stop_deadline

    def _sleep(self, seconds: float) -> None:
        """Sleep while keeping the broker connection's heartbeats flowing."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._abandoned():
                return
            self.subscriber.sleep(min(left, 0.5))


def _wire(doc: dict[str, Any]) -> dict[str, Any]:
    wire = {k: v for k, v in doc.items() if k not in ("_id", "batch")}
    wire["id"] = doc["_id"]
    for key in ("ts", "received_at"):
        wire[key] = doc[key].timestamp()
    return wire


def _dead_batch(bad: list[tuple[Any, str]], headers: dict[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
    """One dead-letter message holding the records that can never be stored, with the reasons."""
    body = orjson.dumps({"v": PAYLOAD_VERSION, "records": [entry for entry, _ in bad],
                         "reasons": [reason for _, reason in bad]}, default=str)
    reasons = sorted({reason for _, reason in bad})
    return body, f"{len(bad)} invalid record(s): " + "; ".join(reasons), headers
