"""Time strings in log lines -> UTC epoch seconds, for one input's time zone.

A time without an offset is read in the input's `timezone`. A busy log repeats
the same second on many lines, so `Times` converts a given second once (its
caches) and adds the fraction afterwards.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_EPOCH_MIN, _EPOCH_MAX = -62135596800.0, 253402300799.0  # what a BSON/Python datetime can hold
ISO = re.compile(r"(?P<second>\d{4}[-/]\d\d[-/]\d\d[T ]\d\d:\d\d:\d\d)(?:[.,](?P<fraction>\d{1,9}))?"
                  r"(?P<zone> ?(?:Z|[+-]\d\d(?::?\d\d)?))?")
_CLF = re.compile(r"(\d\d?)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?: ([+-])(\d\d):?(\d\d))?")
_BSD = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d\d?) (\d\d):(\d\d):(\d\d)")
_NUMBER = re.compile(r"-?\d{9,}(?:\.\d*)?")


def to_epoch(value: float) -> float | None:
    """Epoch seconds from seconds, or from milli/micro/nanoseconds (told apart by size)."""
    if not math.isfinite(value):
        return None
    while abs(value) >= 1e11:  # 1e11 s is the year 5138: a bigger number counts smaller units
        value /= 1000
    return float(value) if _EPOCH_MIN <= value <= _EPOCH_MAX else None


class Times:
    """Time strings -> UTC epoch seconds for one input: its zone, its clock, its caches."""

    def __init__(self, tz: tzinfo, clock: Callable[[], float]):
        self.tz, self.clock = tz, clock
        self._whole = lru_cache(maxsize=4096)(self._parse_whole)
        self._bsd = lru_cache(maxsize=1024)(self._parse_bsd)
        self.clf = lru_cache(maxsize=1024)(self._parse_clf)

    def parse(self, text: str) -> float | None:
        """ISO-8601, common log format, `Mmm dd hh:mm:ss`, RFC 2822 or epoch digits; None if none fits."""
        match = ISO.fullmatch(text)
        if match is not None:
            return self.iso(*match.group("second", "fraction", "zone"))
        if _BSD.fullmatch(text):
            return self.bsd(text)
        return self._whole(text)

    def iso(self, second: str, fraction: str | None, zone: str | None) -> float | None:
        """The parts of an ISO-8601 time as `ISO` splits them: each second converted once."""
        base = self._whole(second + zone if zone else second)
        if fraction is None or base is None:
            return base
        return base + int(fraction) / 10 ** len(fraction)

    def bsd(self, text: str) -> float | None:
        """A year-less syslog time, in the most recent year that puts it at most a day ahead."""
        return self._bsd(text, int(self.clock() // 3600))  # the hour keeps the year choice fresh

    def _aware(self, moment: datetime) -> float | None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        try:
            return to_epoch(moment.timestamp())
        except (OverflowError, ValueError):
            return None

    def _parse_whole(self, text: str) -> float | None:
        text = text.strip()
        if _NUMBER.fullmatch(text):
            return to_epoch(float(text))
        if _CLF.fullmatch(text):
            return self.clf(text)
        if text[4:5] == "/" and text[7:8] == "/":  # nginx error log: 2026/11/26 10:00:00
            text = text[:10].replace("/", "-") + text[10:]
        try:
            return self._aware(datetime.fromisoformat(text))
        except ValueError:
            pass
        try:
            return self._aware(parsedate_to_datetime(text))
        except (TypeError, ValueError, IndexError):
            return None

    def _parse_clf(self, text: str) -> float | None:
        match = _CLF.fullmatch(text)
        month = _MONTHS.get(match[2]) if match else None
        if month is None:
            return None
        day, year, hour, minute, second = (int(match[i]) for i in (1, 3, 4, 5, 6))
        try:
            moment = datetime(year, month, day, hour, minute, second)
        except ValueError:
            return None
        if match[7] is None:
            return self._aware(moment)
        offset = (int(match[8]) * 60 + int(match[9])) * 60
        epoch = moment.replace(tzinfo=UTC).timestamp() - (offset if match[7] == "+" else -offset)
        return to_epoch(epoch)

    def _parse_bsd(self, text: str, _hour: int) -> float | None:
        match = _BSD.match(text)
        month = _MONTHS.get(match[1]) if match else None
        if month is None:
            return None
        day, hour, minute, second = (int(match[i]) for i in (2, 3, 4, 5))
        now = self.clock()
        latest = now + 86400
        year = datetime.fromtimestamp(now, self.tz).year
        for candidate in range(year, year - 8, -1):  # 8 years always include a Feb 29
            try:
                epoch = datetime(candidate, month, day, hour, minute, second, tzinfo=self.tz).timestamp()
            except ValueError:
                continue
            if epoch <= latest:
                return epoch
        return None

    def of_value(self, value: Any) -> float | None:
        """A JSON value as a time: a string as in `parse`, a number as epoch seconds or millis."""
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return to_epoch(value)
        return None


def zone(name: str) -> tzinfo:
    return UTC if name in ("UTC", "Etc/UTC", "Z") else ZoneInfo(name)
