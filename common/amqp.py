"""The one module that talks to RabbitMQ (pika).

Every pika error is sorted here, once, into opslog's own:
- BrokerUnavailable: connection refused/lost/blocked, heartbeat timeout, publish
  nacked or returned. The caller reconnects with backoff and loses nothing,
  because it has not advanced anything that was not confirmed or acked.
- BrokerRejected: credentials refused, or the broker refused our topology
  (a queue declared elsewhere with other arguments). Reconnecting will not help.

One `BlockingConnection` per object and per thread (pika is not thread-safe).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils import io_services_utils

from common.config import AmqpConfig
from common.errors import BrokerRejected, BrokerUnavailable

log = logging.getLogger(__name__)

DLX_SUFFIX = ".dlx"
REQUEUE_SUFFIX = ".requeue"  # bound to the records queue alone: suspects and replayed dead letters go back here
REASON_HEADER = "x-opslog-reason"
# What the broker adds to a message it redelivers or dead-letters: a message published again
# starts afresh, so these (and our reason) are not carried over.
BROKER_HEADERS = ("x-delivery-count", "x-death", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")
_AUTH_ERRORS = (pe.ProbableAuthenticationError, pe.AuthenticationError, pe.ProbableAccessDeniedError)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, _AUTH_ERRORS):
        return BrokerRejected(f"broker refused our credentials: {exc!r}")
    if isinstance(exc, pe.ChannelClosedByBroker) and exc.reply_code in (403, 406):
        return BrokerRejected(f"broker refused: {exc.reply_code} {exc.reply_text}")
    if isinstance(exc, (pe.NackError, pe.UnroutableError)):
        return BrokerUnavailable(f"broker did not take the message: {type(exc).__name__}")
    return BrokerUnavailable(f"broker unavailable: {type(exc).__name__}: {exc}")


_PIKA_ERRORS = (pe.AMQPError, OSError)

# pika reads its socket 4 KiB at a time, and each read is a turn of its event loop plus a copy
# of the frame received so far: for a batch of about 1 MB that is hundreds of turns and many MB
# copied per message. Reading up to a whole frame (RabbitMQ's frame_max, 128 KiB) at a time costs
# a third of that (figures: bench/README.md, "The consumer"). pika has no setting for it, so
# the class attribute it reads is set here; tests/test_amqp_reads.py fails if pika stops reading it.
RECV_BYTES = 128 * 1024
io_services_utils._AsyncTransportBase._MAX_RECV_BYTES = RECV_BYTES


def _parameters(url: str, heartbeat: int) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = max(heartbeat, 30)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.stack_timeout = 10
    return params


def queue_arguments(cfg: AmqpConfig, quorum: bool) -> dict[str, Any]:
    """Arguments of the records queue."""
    args: dict[str, Any] = {"x-dead-letter-exchange": cfg.exchange + DLX_SUFFIX}
    if quorum:
        args.update({
            "x-queue-type": "quorum",
            # A message redelivered this many times (consumers crashing on it) is dead-lettered
            # by the broker itself, so a poison message can never loop forever.
            "x-delivery-limit": cfg.delivery_limit,
            # ...and it stays in this queue until the dead-letter queue has it (RabbitMQ >= 3.10),
            # instead of being lost if the node fails in between. reject-publish is a precondition
            # of at-least-once; the queue has no length limit, so it never rejects anything.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        })
    return args


def declare_topology(channel: BlockingChannel, cfg: AmqpConfig) -> tuple[BlockingChannel, str]:
    """Declare exchange, records queue, dead-letter exchange and queue; idempotent.

    Shipper and consumer both call this, so whichever starts first creates it and
    records are never published to an exchange with no queue bound. The requeue
    exchange feeds the records queue alone (`Subscriber.requeue`). Both queues
    are quorum queues (replicated, with a delivery limit) unless `queue_type` is
    classic; with `auto`, a queue the broker will not declare as quorum (it exists
    as another type or with other arguments, or the broker has no quorum queues)
    is used as it is, or declared classic. A refused declaration closes the
    channel, so this returns the channel to go on with, and the records queue's
    type: "quorum", "classic" or "existing".

    A user without configure permission (the restricted users of
    deploy/rabbitmq/definitions.json: the topology is imported ahead of time) is
    refused every declaration with 403: an object that exists is then used as it is
    (a passive declare needs no permission), and one that does not is waited for,
    as a broker that is down is. A refused binding cannot be checked that way; a
    missing one shows when the broker returns a publish as unroutable."""
    dlx = cfg.exchange + DLX_SUFFIX
    channel = _declare_exchange(channel, cfg.exchange)
    channel = _declare_exchange(channel, dlx)
    quorum = cfg.queue_type in ("auto", "quorum")
    channel, _ = _declare_queue(channel, cfg, cfg.dead_letter_queue, {"x-queue-type": "quorum"} if quorum else {}, {})
    channel = _bind(channel, cfg.dead_letter_queue, dlx)
    channel, kind = _declare_queue(channel, cfg, cfg.queue, queue_arguments(cfg, quorum), queue_arguments(cfg, False))
    channel = _bind(channel, cfg.queue, cfg.exchange)
    # Not the records exchange: a queue an operator bound to it as well (an archive) has its copy already.
    channel = _declare_exchange(channel, cfg.exchange + REQUEUE_SUFFIX)
    channel = _bind(channel, cfg.queue, cfg.exchange + REQUEUE_SUFFIX)
    return channel, kind


_ACCESS_REFUSED = 403
_NOT_FOUND = 404


def _declare_exchange(channel: BlockingChannel, name: str) -> BlockingChannel:
    try:
        channel.exchange_declare(name, "fanout", durable=True)
        return channel
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code != _ACCESS_REFUSED:
            raise
    return _existing(channel.connection.channel(), f"exchange {name}",
                     lambda ch: ch.exchange_declare(name, passive=True))


def _bind(channel: BlockingChannel, queue: str, exchange: str) -> BlockingChannel:
    try:
        channel.queue_bind(queue, exchange)
        return channel
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code != _ACCESS_REFUSED:
            raise
    log.debug("not permitted to bind %s to %s; taking the binding as imported", queue, exchange)
    return channel.connection.channel()


def _existing(channel: BlockingChannel, what: str, passive: Callable[[BlockingChannel], Any]) -> BlockingChannel:
    """After a 403 on declaring `what`: go on if it exists (`passive(channel)` checks), else wait."""
    try:
        passive(channel)
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code != _NOT_FOUND:
            raise
        raise BrokerUnavailable(f"{what} does not exist and this user may not declare it: import "
                                "deploy/rabbitmq/definitions.json, or start one process with configure "
                                "permission") from exc
    log.debug("not permitted to declare %s; it exists, using it as it is", what)
    return channel


def _declare_queue(channel: BlockingChannel, cfg: AmqpConfig, name: str, preferred: dict[str, Any],
                   fallback: dict[str, Any]) -> tuple[BlockingChannel, str]:
    try:
        channel.queue_declare(name, durable=True, arguments=preferred)
        return channel, preferred.get("x-queue-type", "classic")
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code == _ACCESS_REFUSED:
            return _existing(channel.connection.channel(), f"queue {name}",
                             lambda ch: ch.queue_declare(name, passive=True)), "existing"
        if cfg.queue_type != "auto":
            raise
        refusal = f"{exc.reply_code} {exc.reply_text}"
    connection = channel.connection
    channel = connection.channel()
    try:
        channel.queue_declare(name, passive=True)
        log.warning("queue %s exists with other arguments than opslog declares (%s); using it as it is",
                    name, refusal)
        return channel, "existing"
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
    channel = connection.channel()
    channel.queue_declare(name, durable=True, arguments=fallback)
    log.warning("the broker refused queue %s as a quorum queue (%s); declared it classic, so without "
                "a delivery limit", name, refusal)
    return channel, "classic"


class _Link:
    """One connection + channel to the first broker of `cfg.urls` that answers."""

    def __init__(self, cfg: AmqpConfig):
        self.cfg = cfg
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None
        self.queue_type = ""
        self._next_url = random.randrange(len(cfg.urls))  # spread hosts over a cluster

    @property
    def connected(self) -> bool:
        return bool(self.connection and self.connection.is_open and self.channel and self.channel.is_open)

    def connect(self) -> None:
        self.close()
        errors = []
        for _ in range(len(self.cfg.urls)):
            url = self.cfg.urls[self._next_url % len(self.cfg.urls)]
            self._next_url += 1
            try:
                self.connection = pika.BlockingConnection(_parameters(url, self.cfg.heartbeat))
                self.channel = self.connection.channel()
                self.queue_type = self._declare()
                log.info("connected to broker %s (%s queue %s)", _safe(url), self.queue_type, self.cfg.queue)
                return
            except (*_PIKA_ERRORS, BrokerUnavailable) as exc:
                translated = exc if isinstance(exc, BrokerUnavailable) else _translate(exc)
                self.close()
                if isinstance(translated, BrokerRejected):
                    raise translated from exc
                errors.append(f"{_safe(url)}: {translated}")
        raise BrokerUnavailable("; ".join(errors))

    def _declare(self) -> str:
        assert self.channel is not None
        self.channel, kind = declare_topology(self.channel, self.cfg)
        return kind

    def sleep(self, seconds: float) -> None:
        """Wait while keeping heartbeats flowing; a plain sleep would let the broker drop us."""
        if not self.connected:
            import time
            time.sleep(seconds)
            return
        try:
            assert self.connection is not None
            self.connection.sleep(seconds)
        except _PIKA_ERRORS as exc:
            raise _translate(exc) from exc

    def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except _PIKA_ERRORS:
                pass


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    params = pika.URLParameters(url)
    return f"{params.host}:{params.port}{'/' + params.virtual_host if params.virtual_host != '/' else ''}"


class Publisher(_Link):
    """Publishes persistent messages with publisher confirms: publish() returns only
    once the broker has the message safely (routed to a durable queue)."""

    def connect(self) -> None:
        super().connect()
        assert self.channel is not None
        self.channel.confirm_delivery()

    def twin(self) -> Publisher:
        """Another publisher to the same broker, with a connection of its own (for another thread)."""
        return Publisher(self.cfg)

    def publish(self, body: bytes, headers: dict[str, Any] | None = None, routing_key: str = "") -> None:
        if not self.connected:
            self.connect()
        assert self.channel is not None
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                     content_type="application/json", headers=headers)
        try:
            self.channel.basic_publish(self.cfg.exchange, routing_key, body, props, mandatory=True)
        except _PIKA_ERRORS as exc:
            self.close()
            raise _translate(exc) from exc


@dataclass(frozen=True, slots=True)
class Delivery:
    tag: int
    body: bytes
    headers: dict[str, Any]
    redelivered: bool


def fresh_headers(headers: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """`headers` without what the broker added on a redelivery or dead-lettering, nor `drop`."""
    return {k: v for k, v in headers.items() if k not in BROKER_HEADERS and k != REASON_HEADER and k not in drop}


def _publish_confirmed(link: _Link, exchange: str, routing_key: str, body: bytes,
                       headers: dict[str, Any]) -> None:
    """Publish persistent on `link`'s channel, which is in confirm mode: returns once the broker has it."""
    assert link.channel is not None
    props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, headers=headers)
    try:
        link.channel.basic_publish(exchange, routing_key, body, props, mandatory=True)
    except _PIKA_ERRORS as exc:
        link.close()
        raise _translate(exc) from exc


class Subscriber(_Link):
    """Consumes the records queue with manual acks and a prefetch window."""

    def __init__(self, cfg: AmqpConfig, prefetch: int):
        super().__init__(cfg)
        self.prefetch = prefetch

    def connect(self) -> None:
        super().connect()
        assert self.channel is not None
        self.channel.basic_qos(prefetch_count=self.prefetch)
        self.channel.confirm_delivery()  # dead-letter publishes are confirmed before the ack

    def deliveries(self, inactivity_timeout: float) -> Iterator[Delivery | None]:
        """Yields deliveries, and None after `inactivity_timeout` seconds without one."""
        if not self.connected:
            self.connect()
        assert self.channel is not None
        try:
            for method, props, body in self.channel.consume(self.cfg.queue, inactivity_timeout=inactivity_timeout):
                if method is None:
                    yield None
                else:
                    yield Delivery(method.delivery_tag, body, dict(props.headers or {}), method.redelivered)
        except _PIKA_ERRORS as exc:
            self.close()
            raise _translate(exc) from exc

    def waiting(self) -> int:
        """Deliveries already received (the socket read without blocking) and not yet yielded."""
        assert self.connection is not None and self.channel is not None
        try:
            self.connection.process_data_events(time_limit=0)
            return self.channel.get_waiting_message_count()
        except _PIKA_ERRORS as exc:
            self.close()
            raise _translate(exc) from exc

    def ack(self, tag: int, multiple: bool = True) -> None:
        assert self.channel is not None
        try:
            self.channel.basic_ack(tag, multiple=multiple)
        except _PIKA_ERRORS as exc:
            self.close()
            raise _translate(exc) from exc

    def dead_letter(self, body: bytes, reason: str, headers: dict[str, Any] | None = None) -> None:
        """Publish `body` to the dead-letter queue with `reason`, confirmed."""
        _publish_confirmed(self, self.cfg.exchange + DLX_SUFFIX, "", body,
                           {**(headers or {}), REASON_HEADER: reason[:1000]})

    def requeue(self, body: bytes, headers: dict[str, Any]) -> None:
        """Publish `body` again to the records queue alone, through the requeue exchange,
        confirmed: a new message to the broker, its delivery count starts from 0."""
        _publish_confirmed(self, self.cfg.exchange + REQUEUE_SUFFIX, "", body, headers)


class DeadLetterQueue(_Link):
    """The dead-letter queue, for `opslog dead-letters`: messages taken one at a time and
    unacked until `ack`, so whatever is not acked returns to it when the link closes."""

    def connect(self) -> None:
        super().connect()
        assert self.channel is not None
        self.channel.confirm_delivery()

    def depth(self) -> int:
        """Messages ready in the dead-letter queue (those this link holds unacked are not counted)."""
        if not self.connected:
            self.connect()
        assert self.channel is not None
        try:
            return int(self.channel.queue_declare(self.cfg.dead_letter_queue, passive=True).method.message_count)
        except _PIKA_ERRORS as exc:
            self.close()
            raise _translate(exc) from exc

    def take(self) -> Delivery | None:
        """The next dead letter, unacked; None when the queue is empty."""
        if not self.connected:
            self.connect()
        assert self.channel is not None
        try:
            method, props, body = self.channel.basic_get(self.cfg.dead_letter_queue, auto_ack=False)
        except _PIKA_ERRORS as exc:
            self.close()
            raise _translate(exc) from exc
        if method is None:
            return None
        return Delivery(method.delivery_tag, body, dict(props.headers or {}), method.redelivered)

    def send_back(self, body: bytes, headers: dict[str, Any]) -> None:
        """Publish to the records queue alone, confirmed (see `Subscriber.requeue`)."""
        _publish_confirmed(self, self.cfg.exchange + REQUEUE_SUFFIX, "", body, headers)

    def ack(self, tag: int) -> None:
        assert self.channel is not None
        try:
            self.channel.basic_ack(tag)
        except _PIKA_ERRORS as exc:
            self.close()
            raise _translate(exc) from exc


def handshake_completes(url: str, timeout: float = 2) -> bool:
    """True when the broker at `url` completes an AMQP handshake, vhost included: the readiness
    probe of the local-service launchers (common.localservices), so they import no pika."""
    from pika.adapters.utils.connection_workflow import AMQPConnectorException

    params = pika.URLParameters(url)
    params.connection_attempts, params.socket_timeout = 1, timeout
    params.blocked_connection_timeout = timeout
    try:
        pika.BlockingConnection(params).close()
    except (pe.AMQPError, AMQPConnectorException):
        return False
    return True
