"""A batch in hand: the deliveries a worker has taken but not yet stored and acked, the id
it gives each message, and the dead-letter message for records that can never be stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from common.record import encode_rejected
from consumer.store import Message

MESSAGE_ID_HEADER = "x-opslog-message-id"


@dataclass
class Pending:
    """Deliveries taken but not yet stored and acked."""

    messages: list[Message] = field(default_factory=list)
    dead: list[tuple[bytes, str, dict[str, Any]]] = field(default_factory=list)  # body, reason, headers
    last_tag: int = 0
    tags: list[int] = field(default_factory=list)
    deliveries: int = 0
    records: int = 0
    bytes: int = 0
    started: float = 0.0

    def __bool__(self) -> bool:
        return self.last_tag != 0


def message_id_of(body: bytes) -> str:
    """A message's id: its body's hash, the same however often it is redelivered or requeued."""
    return hashlib.sha256(body).hexdigest()[:24]


def dead_batch(bad: list[tuple[Any, str]], headers: dict[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
    """One dead-letter message holding the records that can never be stored, with the reasons.

    It is a valid payload (plus `reasons`), so once fixed it can be published again as it is."""
    reasons = sorted({reason for _, reason in bad})
    return encode_rejected(bad), f"{len(bad)} invalid record(s): " + "; ".join(reasons), headers
