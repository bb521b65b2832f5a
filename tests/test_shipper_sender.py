"""The sender's lanes: several batches in flight at once, handed back in submission order.

The broker is replaced by publishers whose confirms the test releases one by one:
the order in which a real broker confirms messages on different connections is
not something a test can choose (the real-broker behaviour is covered by the
shipper's crash, outage and backpressure tests)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from common.errors import BrokerUnavailable
from shipper.sender import Batch, Sender
from tests.helpers import wait_until


class HeldPublisher:
    """A publisher whose publish() returns once the test releases that body (its confirm),
    or raises if the test fails it. Its twins share the same switchboard."""

    def __init__(self, board: dict[bytes, Any] | None = None, cond: threading.Condition | None = None):
        self.board: dict[bytes, Any] = {} if board is None else board  # body -> "confirm" | exception
        self.cond = cond or threading.Condition()
        self.in_flight: list[bytes] = []
        self.connected = False

    def twin(self) -> HeldPublisher:
        twin = HeldPublisher(self.board, self.cond)
        twin.in_flight = self.in_flight
        return twin

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def sleep(self, seconds: float) -> None:
        pass

    def publish(self, body: bytes, headers: dict[str, Any] | None = None) -> None:
        with self.cond:
            self.in_flight.append(body)
            self.cond.notify_all()
            self.cond.wait_for(lambda: body in self.board)
            outcome = self.board.pop(body)
        if isinstance(outcome, Exception):
            self.connected = False
            raise outcome

    def settle(self, body: bytes, outcome: Any = "confirm") -> None:
        with self.cond:
            self.board[body] = outcome
            self.cond.notify_all()


def batch(n: int) -> Batch:
    return Batch(f"batch-{n}".encode(), 1, {}, {})


def submit_three(sender: Sender, publisher: HeldPublisher) -> list[Batch]:
    batches = [batch(n) for n in range(3)]
    for b in batches:
        assert sender.submit(b, give_up=lambda: False)
    wait_until(lambda: len(publisher.in_flight) == 3, timeout=5, message="three publishes waiting for confirms")
    return batches


@pytest.fixture
def lanes() -> Any:
    publisher = HeldPublisher()
    sender = Sender(publisher, max_bytes=1 << 20, lanes=3).start()  # type: ignore[arg-type]
    wait_until(lambda: sender.ready, timeout=5, message="every lane connected")
    yield sender, publisher
    for body in list(publisher.in_flight):
        publisher.settle(body)
    sender.close(timeout=5)


def test_three_batches_are_in_flight_at_once_and_handed_back_in_submission_order(lanes):
    sender, publisher = lanes
    batches = submit_three(sender, publisher)
    publisher.settle(b"batch-2")
    publisher.settle(b"batch-1")
    wait_until(lambda: batches[1].confirmed and batches[2].confirmed, timeout=5, message="later batches confirmed")
    assert sender.take_confirmed() == [], "nothing is handed back while an earlier batch waits for its confirm"
    publisher.settle(b"batch-0")
    assert sender.wait_idle(5)
    assert sender.take_confirmed() == batches


def test_a_failure_on_one_lane_drops_every_unconfirmed_batch_and_a_late_confirm_is_ignored(lanes):
    sender, publisher = lanes
    submit_three(sender, publisher)
    publisher.settle(b"batch-1", BrokerUnavailable("connection reset"))
    wait_until(lambda: sender.failed, timeout=5, message="the sender failed")
    assert sender.held_bytes == 0
    publisher.settle(b"batch-0")  # the broker confirms after all: the main loop reads it again anyway
    publisher.settle(b"batch-2")
    sender.reset()
    wait_until(lambda: sender.ready, timeout=5, message="every lane connects again")
    assert sender.take_confirmed() == [], "a batch dropped by the failure is never handed back as confirmed"
    again = batch(9)
    assert sender.submit(again, give_up=lambda: False)
    wait_until(lambda: b"batch-9" in publisher.in_flight, timeout=5, message="published after the reconnect")
    publisher.settle(b"batch-9")
    assert sender.wait_idle(5)
    assert sender.take_confirmed() == [again]


def test_submit_waits_while_the_pipeline_is_full(lanes):
    sender, publisher = lanes
    for n in range(sender.depth):
        assert sender.submit(batch(n), give_up=lambda: False)
    gave_up = []
    assert not sender.submit(batch(99), give_up=lambda: gave_up.append(1) or len(gave_up) > 3)
    assert gave_up, "a full pipeline made submit wait (the main loop stops reading)"
