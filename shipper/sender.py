"""Publishing batches on a thread of its own, so reading overlaps the broker's confirms.

The main loop reads, parses and encodes; the sender publishes the finished
batches in order, each persistent and confirmed by the broker, and hands them
back as confirmed. Only this thread touches the `Publisher` (pika is not
thread-safe). At most `max_bytes` of encoded batches (and PIPELINE_DEPTH
batches) wait here: when the broker is slow or blocked (`connection.blocked`,
a memory alarm), `submit` blocks and the main loop stops reading.

    connecting --connect--> ready --publish fails--> failed --reset()--> connecting

A failure drops every batch not yet confirmed, all at once: the main loop
then rewinds each file to its confirmed offset and reads it again (record ids
are deterministic, so a batch the broker took after all is stored once).
Connecting retries with capped exponential backoff and jitter; the backoff
starts over once a connection has worked. A refusal (bad credentials,
conflicting topology) ends the thread and `check()` raises it in the caller.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential_jitter

from common.amqp import Publisher
from common.errors import BrokerRejected, BrokerUnavailable

log = logging.getLogger(__name__)

PIPELINE_DEPTH = 3      # batches published but not yet confirmed, or waiting: enough to hide a confirm's latency
HEARTBEAT_EVERY = 1.0   # an idle connection still answers the broker's heartbeats this often
BACKOFF_INITIAL = 0.5


@dataclass
class Batch:
    body: bytes
    records: int
    headers: dict[str, Any]
    ends: dict[str, tuple[Any, int, str | None]]  # file key -> (tracked file, end offset, tail hash at end)


class State(Enum):
    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"     # waiting for the main loop to rewind and call reset()
    STOPPED = "stopped"


class Sender:
    def __init__(self, publisher: Publisher, max_bytes: int, backoff_max: float = 30.0, depth: int = PIPELINE_DEPTH):
        self.publisher = publisher
        self.max_bytes = max_bytes
        self.backoff_max = backoff_max
        self.depth = depth
        self.failures = 0
        self._cond = threading.Condition()
        self._queue: deque[Batch] = deque()
        self._queued_bytes = 0
        self._confirmed: list[Batch] = []
        self._state = State.CONNECTING
        self._error: BaseException | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opslog-sender", daemon=True)

    # -- the main loop's side ------------------------------------------------------

    def start(self) -> Sender:
        self._thread.start()
        return self

    @property
    def ready(self) -> bool:
        return self._state is State.READY

    @property
    def failed(self) -> bool:
        return self._state is State.FAILED

    @property
    def held_bytes(self) -> int:
        return self._queued_bytes

    def check(self) -> None:
        """Raise the refusal that stopped the sender, if one did."""
        if self._error is not None:
            raise self._error

    def submit(self, batch: Batch, give_up: Callable[[], bool]) -> bool:
        """Queue `batch` for publishing, waiting while the pipeline is full. False when it
        was not queued: the pipeline failed (rewind, then `reset`), or `give_up()` said so."""
        with self._cond:
            while self._state is State.READY and self._queue and (
                    len(self._queue) >= self.depth or self._queued_bytes + len(batch.body) > self.max_bytes):
                if give_up():
                    return False
                self._cond.wait(0.1)
            if self._state is not State.READY:
                return False
            self._queue.append(batch)
            self._queued_bytes += len(batch.body)
            self._cond.notify_all()
            return True

    def take_confirmed(self) -> list[Batch]:
        """The batches the broker confirmed since the last call, in publishing order."""
        with self._cond:
            confirmed, self._confirmed = self._confirmed, []
        return confirmed

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted batch is confirmed; False on failure or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue or self._state is not State.READY, timeout) \
                and not self._queue and self._state is State.READY

    def wait_ready(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._state is not State.CONNECTING, timeout) and self.ready

    def reset(self) -> None:
        """The main loop has rewound its files after a failure: connect again."""
        with self._cond:
            if self._state is State.FAILED:
                self._state = State.CONNECTING
                self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the sender thread ---------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                if self._state is State.CONNECTING:
                    self._connect()
                elif self._state is State.FAILED:
                    with self._cond:
                        self._cond.wait_for(lambda: self._state is not State.FAILED or self._closing.is_set(), 1.0)
                else:
                    self._publish_next()
        except BrokerRejected as exc:
            log.error("the broker refused us: %s", exc)
            self._error = exc
        except Exception as exc:  # a bug here must not leave the main loop waiting forever
            log.exception("sender thread failed")
            self._error = exc
        finally:
            with self._cond:
                self._state = State.STOPPED
                self._queue.clear()
                self._queued_bytes = 0
                self._cond.notify_all()
            self.publisher.close()

    def _connect(self) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(BrokerUnavailable),
            wait=wait_exponential_jitter(initial=BACKOFF_INITIAL, max=self.backoff_max, jitter=1),
            stop=stop_when_event_set(self._closing),
            sleep=self._closing.wait,
            before_sleep=lambda rs: log.warning("broker unavailable (%s); retrying in %.1fs",
                                                rs.outcome.exception() if rs.outcome else "?", rs.upcoming_sleep),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.publisher.connect()
        except BrokerUnavailable:
            if self._closing.is_set():
                return
            raise
        with self._cond:
            if self._state is State.CONNECTING:
                self._state = State.READY
            self._cond.notify_all()

    def _publish_next(self) -> None:
        with self._cond:
            if not self._queue:
                self._cond.wait(HEARTBEAT_EVERY)
            batch = self._queue[0] if self._queue else None
        try:
            if batch is None:
                self.publisher.sleep(0)  # answer heartbeats; notices a dropped connection while idle
                return
            self.publisher.publish(batch.body, headers=batch.headers)
        except BrokerUnavailable as exc:
            self._fail(exc)
            return
        with self._cond:
            self._queue.popleft()
            self._queued_bytes -= len(batch.body)
            self._confirmed.append(batch)
            self._cond.notify_all()

    def _fail(self, exc: BrokerUnavailable) -> None:
        log.warning("broker failure (%s): dropping %d unconfirmed batch(es); they are read again", exc,
                    len(self._queue))
        self.publisher.close()
        with self._cond:
            self.failures += 1
            self._state = State.FAILED
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()
