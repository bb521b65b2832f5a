"""The consumer's loop: take batches from RabbitMQ, store them, then ack.

Deliveries are decoded into documents as they come (payload v2, or v1 from
shippers not upgraded yet: `common.record.decode_documents`) and gathered
while none more is waiting (the deliveries that arrive during a write make the
next batch, so batches grow with the load), up to a count, byte or time bound
or the prefetch window; then written with one `Store.write`, and only then
acked with one multiple-ack. Every batch ends in one of three outcomes:

- OK: stored, or already stored (a redelivery; deterministic ids): ack.
- RETRY: the database is unavailable: keep the batch, wait with capped
  exponential backoff and jitter while the broker connection's heartbeats keep
  flowing, try again. Nothing is acked meanwhile, and the prefetch window stops
  the broker from sending more, so memory stays bounded however long it lasts.
- ERROR: a payload or record that can never be stored (not JSON, breaks the
  schema, refused by the database): published to the dead-letter queue with
  the reason in a header, then acked with the rest, so it never blocks the queue.

A message that crashes the consumer itself is returned to the queue by the
broker; the quorum queue's delivery limit dead-letters it after a few attempts.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, wait_exponential, wait_random

from common.amqp import Delivery, Subscriber
from common.config import Config
from common.errors import BrokerUnavailable, PoisonMessage, StoreUnavailable
from common.record import decode_documents, encode_rejected, to_entry
from consumer.metrics import ConsumerMetrics
from consumer.store import Message, Store, WriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")
MESSAGE_ID_HEADER = "x-opslog-message-id"
_GAVE_UP = object()


@dataclass
class Pending:
    """Deliveries taken but not yet stored and acked."""

    messages: list[Message] = field(default_factory=list)
    dead: list[tuple[bytes, str, dict[str, Any]]] = field(default_factory=list)  # body, reason, headers
    last_tag: int = 0
    deliveries: int = 0
    records: int = 0
    bytes: int = 0
    started: float = 0.0

    def __bool__(self) -> bool:
        return self.last_tag != 0


class Consumer:
    """One worker: one broker connection, one database client, one thread. Run several
    (processes, machines) to scale; they share nothing but the queue and the database."""

    def __init__(self, config: Config, subscriber: Subscriber, store: Store, metrics: ConsumerMetrics | None = None):
        self.cfg = config.consumer
        self.subscriber = subscriber
        self.store = store
        self.metrics = metrics or ConsumerMetrics()
        self.pending = Pending()
        self.stopping = threading.Event()
        self.stop_deadline: float | None = None

    def stop(self) -> None:
        """Stop after the batch in hand is stored and acked, or once `shutdown_timeout` has passed."""
        if not self.stopping.is_set():
            self.stop_deadline = time.monotonic() + self.cfg.shutdown_timeout
            self.stopping.set()

    def run(self) -> None:
        try:
            if self._retry(self.store.init, StoreUnavailable, "database", self.stopping.is_set) is _GAVE_UP:
                return
            while not self.stopping.is_set():
                try:
                    if self._retry(self.subscriber.connect, BrokerUnavailable, "broker",
                                   self.stopping.is_set) is _GAVE_UP:
                        break
                    self._consume()
                except BrokerUnavailable as exc:
                    self._drop_pending(f"broker failure ({exc})")
        finally:
            self.subscriber.close()
            self.store.close()
            log.info("consumer stopped")

    def _drop_pending(self, why: str) -> None:
        """Unacked deliveries return to the queue when the connection goes: forget our copies."""
        taken = len(self.pending.messages) + len(self.pending.dead)
        log.warning("%s; %d unacked deliveries will be redelivered", why, taken)
        self.pending = Pending()
        self.metrics.reconnects.inc()

    def _consume(self) -> None:
        for delivery in self.subscriber.deliveries(inactivity_timeout=min(self.cfg.batch_max_wait, 0.5)):
            if delivery is not None:
                self._take(delivery)
            # Write once nothing more is waiting: while a write runs, the next deliveries
            # gather, so batches grow with the load and a quiet queue is written at once.
            if self.pending and (delivery is None or self._full() or not self.subscriber.waiting()):
                self._flush()
            if self.stopping.is_set():
                # No basic.cancel first: deliveries not taken go back to the queue when we
                # disconnect anyway, and that round trip once stalled for 30 s after a broker restart.
                if self.pending:
                    self._flush()
                return
        # The broker cancelled our subscription (queue deleted or node going down): start over.
        self.subscriber.close()
        self._drop_pending("the broker cancelled the subscription")

    def _full(self) -> bool:
        """Time to write: a bound is reached, or the prefetch window is used up (the broker
        sends nothing more until we ack, so waiting longer would only add latency)."""
        p = self.pending
        return (p.records >= self.cfg.batch_max_records or p.bytes >= self.cfg.batch_max_bytes
                or p.deliveries >= self.cfg.prefetch or time.monotonic() - p.started >= self.cfg.batch_max_wait)

    def _take(self, delivery: Delivery) -> None:
        p = self.pending
        if not p:
            p.started = time.monotonic()
        p.last_tag = delivery.tag
        p.deliveries += 1
        p.bytes += len(delivery.body)
        # The body's hash: the same message redelivered, or published twice, counts once in rollups.
        message_id = hashlib.sha256(delivery.body).hexdigest()[:24]
        headers = {**delivery.headers, MESSAGE_ID_HEADER: message_id}
        try:
            docs, rejected = decode_documents(delivery.body)
        except PoisonMessage as exc:
            p.dead.append((delivery.body, exc.reason, headers))
            return
        if not docs and not rejected:  # shippers never send one: some publisher is broken, say so
            p.dead.append((delivery.body, "payload holds no records", headers))
            return
        for doc in docs:
            doc["batch"] = message_id
        if rejected:
            p.dead.append(_dead_batch(rejected, headers))
        p.messages.append(Message(message_id, docs))
        p.records += len(docs)

    def _flush(self) -> None:
        p, self.pending = self.pending, Pending()
        started = time.monotonic()
        result = self._retry(lambda: self.store.write(p.messages, timeout=self._time_left()), StoreUnavailable,
                             "database", self._past_deadline)
        if result is _GAVE_UP:
            log.warning("shutdown timeout: %d records left unacked for redelivery", p.records)
            return
        assert isinstance(result, WriteResult)
        dead = list(p.dead)
        if result.rejected:
            refused = [(m.id, doc, reason) for m in p.messages for doc in m.docs
                       if (reason := result.rejected.get(doc["_id"]))]
            dead.append(_dead_batch([(to_entry(doc), reason) for _, doc, reason in refused],
                                    {MESSAGE_ID_HEADER: refused[0][0]}))
        for body, reason, headers in dead:
            log.warning("dead-lettering a message: %s", reason)
            self.subscriber.dead_letter(body, reason, headers)
        self.subscriber.ack(p.last_tag, multiple=True)
        self.metrics.stored.inc(result.inserted)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.dead_lettered.inc(len(dead))
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def _retry(self, fn: Callable[[], T], error: type[Exception], what: str,
               give_up: Callable[[], bool]) -> T | object:
        """`fn()`, retried on `error` with capped backoff until it works or `give_up()`; _GAVE_UP then."""
        def before_sleep(rs: Any) -> None:
            self.metrics.retries.inc()
            log.warning("%s unavailable (%s); retrying in %.1fs", what, rs.outcome.exception(), rs.upcoming_sleep)

        retrying = Retrying(retry=retry_if_exception_type(error), stop=lambda _: give_up(),
                            # jitter spreads the workers' retries after an outage; spelled as a sum
                            # because wait_exponential_jitter renamed its arguments across tenacity versions
                            wait=wait_exponential(multiplier=0.2, max=self.cfg.retry_max_wait) + wait_random(0, 0.5),
                            sleep=lambda seconds: self._sleep(seconds, give_up), before_sleep=before_sleep,
                            retry_error_callback=lambda _: _GAVE_UP)
        return retrying(fn)

    def _time_left(self) -> float | None:
        """Seconds until the shutdown deadline, while stopping; None otherwise."""
        return None if self.stop_deadline is None else max(0.1, self.stop_deadline - time.monotonic())

    def _past_deadline(self) -> bool:
        """While stopping, a batch in hand is still worth storing until the shutdown timeout."""
        return self.stop_deadline is not None and time.monotonic() >= self.stop_deadline

    def _sleep(self, seconds: float, give_up: Callable[[], bool]) -> None:
        """Sleep while keeping the broker connection's heartbeats flowing; cut short by `give_up`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not give_up():
            self.subscriber.sleep(min(left, 0.25))


def _dead_batch(bad: list[tuple[Any, str]], headers: dict[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
    """One dead-letter message holding the records that can never be stored, with the reasons.

    It is a valid payload (plus `reasons`), so once fixed it can be published again as it is."""
    reasons = sorted({reason for _, reason in bad})
    return encode_rejected(bad), f"{len(bad)} invalid record(s): " + "; ".join(reasons), headers
