"""Seeds for the coverage tests of the web UI: one file's lines with their identity and byte
lengths, and the shipper's heartbeat for it, stored through the consumer's own Store."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from webui_data import file_lines, seed_docs

from common.record import heartbeats
from consumer.store import Message
from consumer.store import Store as ConsumerStore


def file_docs(count: int, start: datetime, host: str = "web-01", source: str = "/var/log/app.log",
              file: str = "f-app", skip: tuple[int, ...] = (), **kw: Any) -> list[dict[str, Any]]:
    """`count` consecutive lines of one file (minus those at the indexes in `skip`), with `file` and `len`."""
    docs = file_lines([f"line {i:05d} of {source}" for i in range(count)], start, host=host, source=source, **kw)
    for doc in docs:
        doc["file"], doc["len"] = file, len(doc["message"].encode()) + 1
    return [d for i, d in enumerate(docs) if i not in skip]


def end_of(docs: list[dict[str, Any]]) -> int:
    return docs[-1]["offset"] + docs[-1]["len"]


def seed_file(store: ConsumerStore, docs: list[dict[str, Any]]) -> None:
    seed_docs(store, docs)


def beat(store: ConsumerStore, host: str, entries: list[dict[str, Any]], at: float | None = None,
         interval: float = 5.0) -> None:
    """Store a heartbeat message as the consumer does."""
    body = heartbeats.encode(host, time.time() if at is None else at, interval, entries)
    store.write([Message(f"hb-{uuid.uuid4().hex}", [], heartbeats.to_documents(body))])


def entry(file: str, source: str, size: int, confirmed: int | None = None, state: str = "reading",
          names: list[str] | None = None) -> dict[str, Any]:
    return {"file": file, "source": source, "names": names or [source], "size": size,
            "confirmed": size if confirmed is None else confirmed, "inode": "1:2", "fingerprint": "abc",
            "mtime": time.time(), "state": state}
