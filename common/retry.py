"""One retry policy for opslog's connections to the broker and the database.

What is retried is decided once, at the edge: the modules that talk to pika
(`common.amqp`) and pymongo (the store modules) translate the library's errors
into opslog's own (`common.errors`), and callers name the one class worth
waiting for (`BrokerUnavailable`, `StoreUnavailable`). Anything else (a refused
message, a bug) goes up at once: retrying it would only loop.

Waits grow exponentially from `Backoff.initial` up to `Backoff.maximum`, plus up
to `Backoff.jitter` seconds at random, so that the workers an outage cut off do
not all come back in the same instant. Every failed attempt is logged (the
errback) with what is unavailable, why, and when the next try comes.

The backoff resets once a connection has worked: a `retry()` call ends at the
first attempt that works, and the next call starts from `initial` again, so a
new outage after a good connection is retried quickly (as pika's reconnect
examples do), while one that lasts waits up to `maximum` between tries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential, wait_random

log = logging.getLogger(__name__)

T = TypeVar("T")


class GaveUp:
    """What `retry()` returns when `give_up()` said to stop before an attempt worked."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "GAVE_UP"


GAVE_UP: Final = GaveUp()


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter, in seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 1.0

    def wait(self) -> Any:
        """The tenacity wait strategy. Spelled as a sum: wait_exponential_jitter renamed its
        arguments across tenacity versions."""
        return wait_exponential(multiplier=self.initial, max=self.maximum) + wait_random(0, self.jitter)


def retry(fn: Callable[[], T], *, on: type[Exception], what: str, backoff: Backoff,
          give_up: Callable[[], bool], sleep: Callable[[float], object],
          on_retry: Callable[[], None] | None = None) -> T | GaveUp:
    """`fn()`, tried again after each `on` error with `backoff` until it works (its result) or
    `give_up()` is true after a failure (`GAVE_UP`). `sleep(seconds)` waits between tries; make it
    return early when giving up is near (an `Event.wait`, a heartbeat-keeping sleep). `what` names
    the unavailable party in the log ("broker", "database"); `on_retry` runs before each wait
    (a metric)."""

    def errback(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry()
        error = state.outcome.exception() if state.outcome else "?"
        log.warning("%s unavailable (%s); retrying in %.1fs", what, error, state.upcoming_sleep)

    retrying = Retrying(retry=retry_if_exception_type(on), stop=lambda _: give_up(), wait=backoff.wait(),
                        sleep=sleep, before_sleep=errback, retry_error_callback=lambda _: GAVE_UP)
    return retrying(fn)
