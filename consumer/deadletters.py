"""`opslog dead-letters list|replay`: what is parked in the dead-letter queue, and sending it back.

Replaying is always safe: records have deterministic ids, so a record stored
before is neither stored nor counted twice. Each message is published to the
records queue with confirms and removed from the dead-letter queue only once
the broker confirmed it; whatever was not replayed (an error, `--limit`) stays.
Only the messages there when the command starts are replayed, so a message
that is parked again at once is not taken a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.amqp import REASON_HEADER, DeadLetterQueue, Delivery, fresh_headers
from common.errors import PoisonMessage
from common.record import decode_batch
from consumer.batch import MESSAGE_ID_HEADER, message_id_of
from consumer.suspects import SUSPECT_HEADER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parked:
    """One dead letter as `list` shows it."""

    message_id: str
    reason: str
    records: int | None  # None: the payload cannot be read at all

    def line(self) -> str:
        records = "unreadable payload" if self.records is None else f"{self.records} record(s)"
        return f"{self.message_id}  {records}  {self.reason}"


def describe(delivery: Delivery) -> Parked:
    headers = delivery.headers
    reason = headers.get(REASON_HEADER)
    if reason is None:  # dead-lettered by the broker itself
        reason = f"broker: {headers.get('x-first-death-reason', 'unknown')}"
        deaths = headers.get("x-death") or []
        if deaths and isinstance(deaths[0], dict) and deaths[0].get("count"):
            reason += f" (dead-lettered {deaths[0]['count']} time(s))"
    try:
        records: int | None = len(decode_batch(delivery.body))
    except PoisonMessage:
        records = None
    return Parked(_text(headers.get(MESSAGE_ID_HEADER)) or message_id_of(delivery.body), _text(reason), records)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def browse(queue: DeadLetterQueue, limit: int) -> tuple[int, list[Parked]]:
    """How many messages are parked, and the first `limit` of them; nothing is removed."""
    depth = queue.depth()
    shown = []
    try:
        for _ in range(min(limit, depth)):
            delivery = queue.take()
            if delivery is None:
                break
            shown.append(describe(delivery))
    finally:
        queue.close()  # the messages taken unacked go back to the queue
    return depth, shown


@dataclass
class Replayed:
    messages: int = 0
    records: int = 0
    left: int = 0  # still parked when the command ended


def replay(queue: DeadLetterQueue, limit: int | None, dry_run: bool,
           report: Callable[[Parked], None] = lambda _: None) -> Replayed:
    """Send up to `limit` parked messages (all of those there now without one) back to the records
    queue; with `dry_run`, only count them and leave the queue as it was."""
    depth = queue.depth()
    todo = depth if limit is None else min(limit, depth)
    done = Replayed()
    try:
        for _ in range(todo):
            delivery = queue.take()
            if delivery is None:
                break
            parked = describe(delivery)
            if not dry_run:
                # As a new message: no reason, no broker history, not a suspect (it is processed
                # in a batch; if it still kills a consumer, that makes it a suspect again).
                queue.send_back(delivery.body, fresh_headers(delivery.headers, drop=(SUSPECT_HEADER,)))
                queue.ack(delivery.tag)
            report(parked)
            done.messages += 1
            done.records += parked.records or 0
    finally:
        queue.close()
    done.left = depth - (0 if dry_run else done.messages)
    return done
