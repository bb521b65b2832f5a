"""The one retry policy (common.retry): what it retries, how long it waits, when it stops."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from common.errors import BrokerRejected, BrokerUnavailable
from common.retry import GAVE_UP, Backoff, retry


def failing(times: int, error: Exception) -> tuple[list[int], Callable[[], str]]:
    """A call that raises `error` `times` times, then works; and the list of its calls."""
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "connected"
    return calls, fn


def test_waits_grow_to_the_cap_with_jitter_then_the_call_works(caplog: pytest.LogCaptureFixture) -> None:
    calls, fn = failing(6, BrokerUnavailable("refused"))
    waits: list[float] = []
    retried: list[int] = []
    with caplog.at_level(logging.WARNING, logger="common.retry"):
        result = retry(fn, on=BrokerUnavailable, what="broker", backoff=Backoff(initial=1, maximum=8, jitter=0.5),
                       give_up=lambda: False, sleep=waits.append, on_retry=lambda: retried.append(1))
    assert result == "connected" and len(calls) == 7 and len(retried) == 6
    for wait, base in zip(waits, (1, 2, 4, 8, 8, 8), strict=True):
        assert base <= wait <= base + 0.5, waits
    assert caplog.text.count("broker unavailable (refused); retrying in") == 6


def test_a_new_call_starts_from_the_shortest_wait_again() -> None:
    """The backoff resets once a connection has worked: each call is a new sequence of waits."""
    waits: list[float] = []
    for _ in range(2):
        _, fn = failing(3, BrokerUnavailable("down"))
        retry(fn, on=BrokerUnavailable, what="broker", backoff=Backoff(initial=1, maximum=30, jitter=0),
              give_up=lambda: False, sleep=waits.append)
    assert waits == [1, 2, 4, 1, 2, 4]


def test_other_errors_are_not_retried() -> None:
    calls, fn = failing(1, BrokerRejected("access refused"))
    with pytest.raises(BrokerRejected):
        retry(fn, on=BrokerUnavailable, what="broker", backoff=Backoff(), give_up=lambda: False,
              sleep=lambda _: pytest.fail("no wait for an error that is not retried"))
    assert len(calls) == 1


def test_giving_up_returns_gave_up_after_the_failed_attempt() -> None:
    calls, fn = failing(100, BrokerUnavailable("down"))
    result = retry(fn, on=BrokerUnavailable, what="broker", backoff=Backoff(jitter=0),
                   give_up=lambda: len(calls) >= 3, sleep=lambda _: None)
    assert result is GAVE_UP and len(calls) == 3
