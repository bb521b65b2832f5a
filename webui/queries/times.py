"""The rollups' time grid: UTC datetimes floored to minutes, quarter hours and hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MINUTE = timedelta(minutes=1)
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)


def utc(dt: datetime) -> datetime:
    """Datetimes from a client without tz_aware come back naive; they are UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def floor_to(dt: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(dt.timestamp() // seconds * seconds, UTC)


def hour_starts(lo: datetime, hi: datetime) -> list[datetime]:
    """The start of every hour from the one holding `lo` up to `hi`."""
    hours, h = [], floor_to(lo, HOUR)
    while h < hi:
        hours.append(h)
        h += HOUR
    return hours
