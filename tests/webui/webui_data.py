"""Test data and helpers of the web UI suites: documents as the consumer writes them, signing in."""

from __future__ import annotations

import calendar
import hashlib
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pymongo
from flask.testing import FlaskClient
from pymongo.database import Database

from consumer.tally import rollup_id

PASSWORD = "correct horse battery"
TOKEN = "test-token-0123456789"
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


def seed_docs(db: Database, docs: list[dict[str, Any]]) -> None:
    """Insert `docs` and maintain rollups and hosts as the consumer does."""
    if not docs:
        return
    for i in range(0, len(docs), 5000):
        db.logs.insert_many(docs[i:i + 5000], ordered=False)
    counts: Counter = Counter()
    for d in docs:
        minute = d["ts"].replace(second=0, microsecond=0)
        counts[(minute, d["host"], d["app"], d.get("level"))] += 1
    ops = [pymongo.UpdateOne({"_id": rollup_id(calendar.timegm(t.utctimetuple()), h, a, lv)},
                             {"$setOnInsert": {"t": t, "host": h, "app": a, "level": lv}, "$inc": {"n": n}},
                             upsert=True) for (t, h, a, lv), n in counts.items()]
    for i in range(0, len(ops), 5000):
        db.rollups.bulk_write(ops[i:i + 5000], ordered=False)
    per_host: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        per_host.setdefault(d["host"], []).append(d)
    for host, hd in per_host.items():
        db.hosts.update_one({"_id": host}, {
            "$min": {"first_seen": min(d["ts"] for d in hd)}, "$max": {"last_seen": max(d["ts"] for d in hd)},
            "$inc": {"records": len(hd), "errors": sum(d.get("level") in ("error", "critical") for d in hd)},
            "$addToSet": {"apps": {"$each": sorted({d["app"] for d in hd})},
                          "sources": {"$each": sorted({d["source"] for d in hd})}}}, upsert=True)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: FlaskClient, user: str = "admin", password: str = PASSWORD):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": user, "password": password, "csrf_token": token, "next": "/"})
