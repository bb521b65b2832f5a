"""What the `hosts` collection says about each host, and a host's records per day."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from common.record import ERROR_LEVELS
from webui.queries.budget import Budget
from webui.queries.hour_tables import HourCache
from webui.queries.times import floor_to, hour_starts, utc

if TYPE_CHECKING:
    from webui.queries.handle import ReadHandle

_HOST_FIELDS = {"batches": 0}  # the consumer's redelivery guard list: large and of no use here


def list_hosts(db: ReadHandle, limit: int) -> list[dict[str, Any]]:
    return [_summary(db, d) for d in db.hosts.find({}, _HOST_FIELDS).sort("_id", 1).limit(limit)]


def find_host(db: ReadHandle, name: str) -> dict[str, Any] | None:
    doc = db.hosts.find_one({"_id": name}, _HOST_FIELDS)
    return _summary(db, doc) if doc else None


def _summary(db: ReadHandle, doc: dict[str, Any]) -> dict[str, Any]:
    first, last = utc(doc.get("first_seen") or doc["last_seen"]), utc(doc["last_seen"])
    days = max(1.0, (db.now() - first).total_seconds() / 86400)
    records, errors = int(doc.get("records") or 0), int(doc.get("errors") or 0)
    return {"host": doc["_id"], "first_seen": first, "last_seen": last, "records": records, "errors": errors,
            "records_per_day": round(records / days, 1), "errors_per_day": round(errors / days, 1),
            "last_error": utc(doc["last_error"]) if doc.get("last_error") else None,
            "apps": sorted(doc.get("apps") or []), "sources": sorted(doc.get("sources") or [])}


def list_apps(db: ReadHandle) -> list[str]:
    return sorted({a for d in db.hosts.find({}, {"apps": 1}).limit(2000) for a in d.get("apps") or []})


def host_calendar(db: ReadHandle, hours: HourCache, host: str, days: int, budget: Budget) -> dict[str, Any]:
    now = db.now()
    today = floor_to(now, timedelta(days=1))
    first = today - timedelta(days=days - 1)
    tables = hours.tables(hour_starts(first, now), budget)
    per_day: dict[datetime, list[int] | None] = {first + timedelta(days=i): [0, 0] for i in range(days)}
    for hour, table in tables.items():
        day = floor_to(hour, timedelta(days=1))
        if per_day.get(day) is None:
            continue
        if table is None:
            per_day[day] = None
            continue
        for (h, _app, level), slots in table.items():
            if h == host:
                per_day[day][0] += sum(slots)
                per_day[day][1] += sum(slots) if level in ERROR_LEVELS else 0
    rows = [{"date": d.date().isoformat(), "count": None if v is None else v[0],
             "errors": None if v is None else v[1]} for d, v in per_day.items()]
    return {"days": rows, "complete": all(r["count"] is not None for r in rows)}
