"""Records as plain objects, for tests and the bench: the product builds payloads row by row
(`common.record.BatchBuilder`) and never needs a record object, so this lives here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from common.record import PAYLOAD_VERSION, BatchBuilder, IdHasher, row


def record_id(host: str, fingerprint: str, offset: int, raw: bytes) -> str:
    """The id the shipper gives the line at `offset` of the file `fingerprint` on `host`."""
    return IdHasher(host, fingerprint)(offset, raw)


@dataclass(slots=True)
class Record:
    id: str
    host: str
    app: str
    source: str
    offset: int
    message: str
    received_at: float
    ts: float | None = None
    level: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    parse_error: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The record's v1 payload entry."""
        wire = {"id": self.id, "ts": self.received_at if self.ts is None else self.ts,
                "received_at": self.received_at, "host": self.host, "app": self.app, "source": self.source,
                "offset": self.offset, "message": self.message}
        if self.level:
            wire["level"] = self.level
        if self.fields:
            wire["fields"] = self.fields
        if self.parse_error:
            wire["parse_error"] = self.parse_error
        return wire


def encode_batch(records: Sequence[Record], version: int = PAYLOAD_VERSION) -> bytes:
    """The AMQP message body for `records`: v2 (one group per run of records sharing host, app,
    source and received_at), or v1 as older shippers send it."""
    if version == 1:
        return orjson.dumps({"v": 1, "records": [r.to_wire() for r in records]})
    builder = BatchBuilder()
    rows: list[tuple[Any, ...]] = []
    shared = None
    for r in records:
        if (r.host, r.app, r.source, r.received_at) != shared:
            shared = (r.host, r.app, r.source, r.received_at)
            rows = builder.group(*shared)
        rows.append(row(r.id, r.offset, r.ts, r.message, r.level, r.fields, r.parse_error))
    return builder.encode()
