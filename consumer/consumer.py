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

A message that crashes the consumer itself is isolated by evidence of its own
(`consumer.suspects`): a redelivered message is requeued as a suspect, and a
suspect is processed alone, its attempts recorded, parked once they add up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from common.amqp import Delivery, Subscriber, fresh_headers
from common.config import Config
from common.errors import BrokerUnavailable, PoisonMessage, StoreUnavailable
from common.record import decode_documents, heartbeats, to_entry
from common.retry import GAVE_UP, Backoff, GaveUp, retry
from consumer.batch import MESSAGE_ID_HEADER, Pending, dead_batch, message_id_of
from consumer.metrics import ConsumerMetrics
from consumer.store import Message, Store, WriteResult
from consumer.suspects import SUSPECT_HEADER, Suspects

log = logging.getLogger(__name__)

T = TypeVar("T")


class Consumer:
    """One worker: one broker connection, one database client, one thread. Run several
    (processes, machines) to scale; they share nothing but the queue and the database."""

    def __init__(self, config: Config, subscriber: Subscriber, store: Store, metrics: ConsumerMetrics | None = None):
        self.consumer_cfg = config.consumer
        self.subscriber = subscriber
        self.store = store
        self.metrics = metrics or ConsumerMetrics()
        self.pending = Pending()
        self.suspects = Suspects()  # taken, unacked, each to be processed alone
        self.stopping = threading.Event()
        self.stop_deadline: float | None = None
        self.backoff = Backoff(initial=0.2, maximum=self.consumer_cfg.retry_max_wait, jitter=0.5)

    def stop(self) -> None:
        """Stop after the batch in hand is stored and acked, or once `shutdown_timeout` has passed."""
        if not self.stopping.is_set():
            self.stop_deadline = time.monotonic() + self.consumer_cfg.shutdown_timeout
            self.stopping.set()

    def run(self) -> None:
        try:
            if self._retry(self.store.init, StoreUnavailable, "database", self.stopping.is_set) is GAVE_UP:
                return
            while not self.stopping.is_set():
                try:
                    if self._retry(self.subscriber.connect, BrokerUnavailable, "broker",
                                   self.stopping.is_set) is GAVE_UP:
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
        taken = len(self.pending.messages) + len(self.pending.dead) + len(self.suspects)
        log.warning("%s; %d unacked deliveries will be redelivered", why, taken)
        self.pending = Pending()
        self.suspects.clear()
        self.metrics.reconnects.inc()

    def _consume(self) -> None:
        for delivery in self.subscriber.deliveries(inactivity_timeout=min(self.consumer_cfg.batch_max_wait, 0.5)):
            if delivery is not None:
                self._sort(delivery)
            # Write once nothing more is waiting: while a write runs, the next deliveries
            # gather, so batches grow with the load and a quiet queue is written at once.
            if self.pending and (delivery is None or self._full() or not self.subscriber.waiting()):
                self._flush()
            # Suspects, slow one by one, only once every delivery in hand is sorted: a redelivered
            # message sitting unsorted behind them would be returned, counted, by the next death.
            while self.suspects and not self.stopping.is_set() and not self.subscriber.waiting():
                self._flush_alone(self.suspects.pick())
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
        p, cfg = self.pending, self.consumer_cfg
        return (p.records >= cfg.batch_max_records or p.bytes >= cfg.batch_max_bytes
                or p.deliveries >= cfg.prefetch or time.monotonic() - p.started >= cfg.batch_max_wait)

    def _sort(self, delivery: Delivery) -> None:
        if delivery.redelivered:
            self._requeue(delivery)
        elif SUSPECT_HEADER in delivery.headers:
            self.suspects.add(delivery)
        else:
            self._take(delivery, self.pending)

    def _requeue(self, delivery: Delivery) -> None:
        """A worker died holding this message (or lost its connection): send it round again as a
        suspect, a new message to the broker, so deaths it did not cause never add up to its limit."""
        log.info("message %s came back from a worker that died or disconnected; requeued as a suspect",
                 message_id_of(delivery.body))
        self.subscriber.requeue(delivery.body, {**fresh_headers(delivery.headers), SUSPECT_HEADER: 1})
        self.subscriber.ack(delivery.tag, multiple=False)
        self.metrics.requeued.inc()

    def _flush_alone(self, delivery: Delivery) -> None:
        """A suspect, processed with no other message, its attempt recorded first (module docstring)."""
        message_id = message_id_of(delivery.body)
        crashes = self._retry(lambda: self.store.begin_attempt(message_id), StoreUnavailable, "database",
                              self.stopping.is_set)
        if crashes is GAVE_UP:
            return  # stopping: it stays unacked and comes back
        assert isinstance(crashes, int)
        if crashes >= self.consumer_cfg.crash_limit:
            reason = f"crashed the consumer {crashes} times while processed alone"
            log.error("parking message %s: %s", message_id, reason)
            headers = fresh_headers(delivery.headers, drop=(SUSPECT_HEADER,))
            self.subscriber.dead_letter(delivery.body, reason, {**headers, MESSAGE_ID_HEADER: message_id})
            self.subscriber.ack(delivery.tag, multiple=False)
            self.metrics.dead_lettered.inc()
            self._retry(lambda: self.store.end_attempt(message_id), StoreUnavailable, "database",
                        self.stopping.is_set)
            return
        alone = Pending()
        self._take(delivery, alone)
        self._flush(alone, done=lambda: self.store.end_attempt(message_id))

    def _take(self, delivery: Delivery, p: Pending) -> None:
        if not p:
            p.started = time.monotonic()
        p.last_tag = delivery.tag
        p.tags.append(delivery.tag)
        p.deliveries += 1
        p.bytes += len(delivery.body)
        # The body's hash: the same message redelivered, or published twice, counts once in rollups.
        message_id = message_id_of(delivery.body)
        headers = {**fresh_headers(delivery.headers, drop=(SUSPECT_HEADER,)), MESSAGE_ID_HEADER: message_id}
        if delivery.headers.get(heartbeats.KIND_HEADER) == heartbeats.KIND:
            try:
                p.messages.append(Message(message_id, [], heartbeats.to_documents(delivery.body)))
            except PoisonMessage as exc:
                p.dead.append((delivery.body, exc.reason, headers))
            return
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
            p.dead.append(dead_batch(rejected, headers))
        p.messages.append(Message(message_id, docs))
        p.records += len(docs)

    def _flush(self, alone: Pending | None = None, done: Callable[[], None] | None = None) -> None:
        """Store and ack the pending batch, or `alone` (one suspect); `done` runs once it is stored
        and before the ack, retried with the write."""
        if alone is None:
            p, self.pending = self.pending, Pending()
        else:
            p = alone
        started = time.monotonic()

        def write() -> WriteResult:
            result = self.store.write(p.messages, timeout=self._time_left())
            if done is not None:
                done()
            return result

        result = self._retry(write, StoreUnavailable, "database", self._past_deadline)
        if result is GAVE_UP:
            log.warning("shutdown timeout: %d records left unacked for redelivery", p.records)
            return
        assert isinstance(result, WriteResult)
        dead = list(p.dead)
        if result.rejected:
            refused = [(m.id, doc, reason) for m in p.messages for doc in m.docs
                       if (reason := result.rejected.get(doc["_id"]))]
            dead.append(dead_batch([(to_entry(doc), reason) for _, doc, reason in refused],
                                    {MESSAGE_ID_HEADER: refused[0][0]}))
        for body, reason, headers in dead:
            log.warning("dead-lettering a message: %s", reason)
            self.subscriber.dead_letter(body, reason, headers)
        if self.suspects.any_before(p.last_tag):
            for tag in p.tags:  # a multiple ack would also ack the suspects set aside
                self.subscriber.ack(tag, multiple=False)
        else:
            self.subscriber.ack(p.last_tag, multiple=True)
        self.metrics.stored.inc(result.inserted)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.dead_lettered.inc(len(dead))
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    def _retry(self, fn: Callable[[], T], error: type[Exception], what: str,
               give_up: Callable[[], bool]) -> T | GaveUp:
        """`fn()`, retried on `error` (common.retry) until it works or `give_up()`; GAVE_UP then.
        The waits keep the broker connection's heartbeats flowing."""
        return retry(fn, on=error, what=what, backoff=self.backoff, give_up=give_up,
                     sleep=lambda seconds: self._sleep(seconds, give_up), on_retry=self.metrics.retries.inc)

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
