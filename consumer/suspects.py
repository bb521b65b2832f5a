"""Suspects: messages a worker may have died of, each to be processed alone.

A message that crashes the consumer itself cannot be told, by the broker, from
its innocent neighbours: when a worker dies, every message it held comes back
redelivered, and the quorum queue's delivery count grows for all of them alike.
So the consumer decides, from evidence of its own:

- A redelivered message is a suspect. It is published again at once to the
  records queue with a suspect header (confirmed) and the original acked: a new
  message, so its broker delivery count starts again from 0, and the broker's
  delivery limit stays a safety net for a message that kills a worker before it
  can even be looked at. Nothing is decoded on this path, so it cannot crash.
- A message with the suspect header is processed alone (those in hand in random
  order), after every delivery in hand has been sorted (so a redelivered neighbour is requeued before the
  next death could return it again). Just before, an attempt is recorded in
  MongoDB; an outcome removes it. Attempts still recorded are deaths of a
  worker holding that message and no other. Once `consumer.crash_limit` of
  them are recorded the message is parked in the dead-letter queue with that
  reason. A database outage is not an attempt: nothing is recorded while the
  database is away, the suspect just waits.

This module holds the suspects set aside and picks the next one; the loop acts
on them (`Consumer._requeue`, `Consumer._flush_alone` in consumer.consumer), and
the attempts are kept by `consumer.store.attempts`.
"""

from __future__ import annotations

import random
from collections import deque

from common.amqp import Delivery

SUSPECT_HEADER = "x-opslog-suspect"  # requeued after a redelivery: to be processed alone


class Suspects:
    """The suspects a worker has taken and not acked yet, set aside from its batches."""

    def __init__(self, rng: random.Random | None = None):
        self._held: deque[Delivery] = deque()
        self._random = rng or random.Random()

    def __len__(self) -> int:
        return len(self._held)

    def add(self, delivery: Delivery) -> None:
        self._held.append(delivery)

    def clear(self) -> None:
        self._held.clear()

    def pick(self) -> Delivery:
        """A suspect picked at random, and forgotten. In order, the one a worker was processing when it
        was killed would come back first after every restart, so a kill loop would hit it again and again."""
        picked = self._random.randrange(len(self._held))
        suspect = self._held[picked]
        del self._held[picked]
        return suspect

    def any_before(self, tag: int) -> bool:
        """True if a suspect was delivered before `tag`: a multiple ack up to `tag` would ack it too."""
        return any(s.tag < tag for s in self._held)
