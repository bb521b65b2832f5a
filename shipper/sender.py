"""Publishing batches on threads of their own, so reading overlaps the broker's confirms.

The main loop reads, parses and encodes; the sender publishes the finished
batches, each persistent and confirmed by the broker, and hands them back as
confirmed, in the order they were submitted. It publishes on LANES
connections at once, each waiting for one confirm at a time: a confirm takes
the broker a while (the quorum queue writes the message to disk first), and
with one message in flight that wait, not the reading, bounded the shipper.
Each lane thread owns its connection (pika is not thread-safe). Batches may
reach the queue out of order; nothing downstream depends on their order, and
a file's offset only moves past a batch once every batch before it is
confirmed too. At most `max_bytes` of encoded batches (and `depth` batches)
wait here: when the broker is slow or blocked (`connection.blocked`, a memory
alarm), `submit` blocks and the main loop stops reading.

    connecting --every lane connected--> ready --a publish fails--> failed --reset()--> connecting

A failure on any lane drops every batch not yet confirmed, all at once: the
main loop then rewinds each file to its confirmed offset and reads it again
(record ids are deterministic, so a batch the broker took after all is stored
once). A generation number, raised by each failure, makes a lane ignore the
outcome of a publish it started before the failure. Connecting retries with
capped exponential backoff and jitter; the backoff starts over once a
connection has worked. A refusal (bad credentials, conflicting topology) stops
every lane and `check()` raises it in the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from common.amqp import Publisher
from common.errors import BrokerRejected, BrokerUnavailable
from common.retry import GAVE_UP, Backoff, retry

log = logging.getLogger(__name__)

LANES = 3               # connections publishing at once (why three: bench/README.md, design-choice figures)
PIPELINE_DEPTH = LANES + 2  # batches published and not yet confirmed, or waiting: keeps every lane busy
HEARTBEAT_EVERY = 1.0   # an idle connection still answers the broker's heartbeats this often
BACKOFF_INITIAL = 0.5


@dataclass(eq=False)
class Batch:
    body: bytes
    records: int
    headers: dict[str, Any]
    ends: dict[str, tuple[Any, int, str | None]]  # file key -> (tracked file, end offset, tail hash at end)
    taken: bool = False       # a lane is publishing it
    confirmed: bool = False   # the broker confirmed it (it waits here until those before it are)


class State(Enum):
    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"     # waiting for the main loop to rewind and call reset()
    STOPPED = "stopped"


class Sender:
    def __init__(self, publisher: Publisher, max_bytes: int, backoff_max: float = 30.0, depth: int = PIPELINE_DEPTH,
                 lanes: int = LANES):
        """`publisher` is the first lane's; the others get their own connections to the same broker."""
        self.publishers = [publisher, *(publisher.twin() for _ in range(lanes - 1))]
        self.max_bytes = max_bytes
        self.backoff_max = backoff_max
        self.depth = depth
        self._cond = threading.Condition()
        self._queue: deque[Batch] = deque()  # submitted and not yet handed back, in submission order
        self._queued_bytes = 0
        self._confirmed: list[Batch] = []
        self._state = State.CONNECTING
        self._generation = 0   # raised by each failure
        self._connected = 0    # lanes connected in this generation
        self._error: BaseException | None = None
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._lane, args=(p,), name=f"opslog-sender-{i}", daemon=True)
                         for i, p in enumerate(self.publishers)]

    # -- the main loop's side ------------------------------------------------------

    def start(self) -> Sender:
        for thread in self._threads:
            thread.start()
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

    def reconfigure(self, max_bytes: int, backoff_max: float) -> None:
        """Reloaded settings (SIGHUP): the buffer bound applies to the next submit, the backoff
        cap to the next reconnect."""
        with self._cond:
            self.max_bytes, self.backoff_max = max_bytes, backoff_max
            self._cond.notify_all()

    def reset(self) -> None:
        """The main loop has rewound its files after a failure: connect again."""
        with self._cond:
            if self._state is State.FAILED:
                self._state = State.CONNECTING
                self._connected = 0
                self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._mark_stopped()

    def _mark_stopped(self) -> None:
        with self._cond:
            self._state = State.STOPPED
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()

    # -- the lane threads --------------------------------------------------------

    def _lane(self, publisher: Publisher) -> None:
        generation = -1  # the generation this lane's connection was made in
        try:
            while not self._closing.is_set():
                with self._cond:
                    state, current = self._state, self._generation
                if state is State.READY and generation == current:
                    self._publish_next(publisher, current)
                elif state is State.CONNECTING and generation != current:
                    publisher.close()
                    if self._connect(publisher):
                        generation = current
                        self._lane_connected(current)
                else:  # failed, stopped, or connected and waiting for the other lanes
                    if generation != current:
                        publisher.close()
                    elif publisher.connected:
                        publisher.sleep(0)  # answer heartbeats while the other lanes connect
                    self._wait_for_change(state, current)
        except BrokerRejected as exc:
            log.error("the broker refused us: %s", exc)
            self._stop(exc)
        except Exception as exc:  # a bug here must not leave the main loop waiting forever
            log.exception("sender thread failed")
            self._stop(exc)
        finally:
            publisher.close()

    def _wait_for_change(self, state: State, generation: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: (self._state, self._generation) != (state, generation)
                                or self._closing.is_set(), HEARTBEAT_EVERY)

    def _stop(self, exc: BaseException) -> None:
        """A lane cannot go on: stop them all, and let `check()` tell the main loop why."""
        self._error = exc
        self._closing.set()
        self._mark_stopped()

    def _connect(self, publisher: Publisher) -> bool:
        """Connect this lane, retrying with backoff; False if the sender is closing."""
        connected = retry(publisher.connect, on=BrokerUnavailable, what="broker",
                          backoff=Backoff(initial=BACKOFF_INITIAL, maximum=self.backoff_max, jitter=1.0),
                          give_up=self._closing.is_set, sleep=self._closing.wait)
        return connected is not GAVE_UP

    def _lane_connected(self, generation: int) -> None:
        with self._cond:
            if generation != self._generation or self._state is not State.CONNECTING:
                return  # another lane failed meanwhile: this connection is dropped and made again
            self._connected += 1
            if self._connected == len(self.publishers):
                self._state = State.READY
            self._cond.notify_all()

    def _publish_next(self, publisher: Publisher, generation: int) -> None:
        with self._cond:
            batch = self._untaken()
            if batch is None:
                self._cond.wait(HEARTBEAT_EVERY)
                if self._generation != generation:
                    return
                batch = self._untaken()
            if batch is not None:
                batch.taken = True
        try:
            if batch is None:
                publisher.sleep(0)  # answer heartbeats; notices a dropped connection while idle
                return
            publisher.publish(batch.body, headers=batch.headers)
        except BrokerUnavailable as exc:
            self._fail(exc, generation)
            return
        with self._cond:
            if self._generation != generation:
                return  # dropped by a failure on another lane meanwhile: it is read again anyway
            batch.confirmed = True
            while self._queue and self._queue[0].confirmed:
                done = self._queue.popleft()
                self._queued_bytes -= len(done.body)
                self._confirmed.append(done)
            self._cond.notify_all()

    def _untaken(self) -> Batch | None:
        return next((b for b in self._queue if not b.taken), None)

    def _fail(self, exc: BrokerUnavailable, generation: int) -> None:
        with self._cond:
            if self._generation != generation or self._state is State.STOPPED:
                return  # another lane already failed this generation
            log.warning("broker failure (%s): dropping %d unconfirmed batch(es); they are read again", exc,
                        len(self._queue))
            self._generation += 1
            self._state = State.FAILED
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()
