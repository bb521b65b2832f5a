"""Test data and helpers of the web UI suites: documents stored by the consumer's own code, signing in."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from consumer.store import Message
from consumer.store import Store as ConsumerStore

PASSWORD = "correct horse battery"
TOKEN = "test-token-0123456789"  # a plain string in webui.api_tokens: role viewer
EDITOR_TOKEN = "test-editor-token-0123456789"
ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "5f1b0c3e9a7d42e68c0b1f2a3d4e5f60718293a4b5c6d7e8f9011223344556677"


def doc_id(*parts: Any) -> str:
    return hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=12).hexdigest()


def make_doc(ts: datetime, message: str, host: str = "web-01", app: str = "nginx", level: str | None = "info",
             source: str = "/var/log/app.log", offset: int = 0, fields: dict | None = None,
             **extra: Any) -> dict[str, Any]:
    doc = {"_id": extra.pop("_id", None) or doc_id(host, source, offset, message, ts.isoformat()),
           "ts": ts, "received_at": ts, "host": host, "app": app, "source": source, "offset": offset,
           "message": message, "fields": fields or {}, **extra}
    if level is not None:
        doc["level"] = level
    return doc


def file_lines(messages: list[str], start: datetime, host: str = "web-01", source: str = "/var/log/app.log",
               first_offset: int = 0, step: timedelta = timedelta(seconds=1), **kw: Any) -> list[dict[str, Any]]:
    """Documents for consecutive lines of one file: each offset is the previous one plus its bytes and a newline."""
    docs, offset = [], first_offset
    for i, message in enumerate(messages):
        docs.append(make_doc(start + i * step, message, host=host, source=source, offset=offset, **kw))
        offset += len(message.encode()) + 1
    return docs


def seed_docs(store: ConsumerStore, docs: list[dict[str, Any]]) -> None:
    """Store `docs` through the consumer's own `Store.write`: `logs`, `rollups` and `hosts`
    exactly as production writes them, one message per 5,000 documents."""
    for i in range(0, len(docs), 5000):
        message_id = f"seed-{uuid.uuid4().hex}"
        store.write([Message(message_id, [{**_as_stored(d), "batch": message_id} for d in docs[i:i + 5000]])])


def _as_stored(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with its times naive UTC, as `common.record.to_document` hands them to the consumer."""
    return {k: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v
            for k, v in doc.items()}


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: FlaskClient, user: str = "admin", password: str = PASSWORD):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": user, "password": password, "csrf_token": token, "next": "/"})
