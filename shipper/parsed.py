"""What a parser returns, and the level words and field names every format reads.

The formats themselves are in shipper.parsers (and the modules it names);
times in shipper.times. A level is always one of common.record.LEVELS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from common.record import LEVELS


class Parsed(NamedTuple):
    ts: float | None        # event time, epoch seconds UTC; None if the line has none
    level: str | None       # one of common.record.LEVELS or None
    fields: dict[str, Any]  # parsed named values, JSON-serialisable, within common.fields' bounds
    error: str | None       # parse_error text when parsing failed (fields then {}) or fields were bounded
    message: str | None = None  # the record's message when the format names one (logfmt `msg`); else the line


Parser = Callable[[str], Parsed]

TIME_KEYS = ("ts", "time", "@timestamp", "timestamp")
LEVEL_KEYS = ("level", "severity", "lvl", "log.level")


# every level word a format may use, for each of common.record.LEVELS (the one set of names)
_LEVEL_WORDS = {
    "debug": ("trace", "trc", "debug", "dbg", "verbose", "fine", "finer", "finest", "t", "v", "d"),
    "info": ("info", "inf", "information", "informational", "notice", "note", "i"),
    "warning": ("warn", "warning", "wrn", "w"),
    "error": ("err", "error", "severe", "e"),
    "critical": ("crit", "critical", "fatal", "ftl", "alert", "emerg", "emergency", "panic", "f"),
}
# syslog severities 0..7, and the numeric levels of bunyan/pino (10 trace .. 60 fatal)
_LEVEL_NUMBERS = {
    0: "critical", 1: "critical", 2: "critical", 3: "error", 4: "warning", 5: "info", 6: "info", 7: "debug",
    10: "debug", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "critical",
}
_LEVEL_BY_TEXT = {variant: level for level, words in _LEVEL_WORDS.items()
                  for word in words for variant in (word, word.upper(), word.title())}
_LEVEL_BY_TEXT.update({str(number): level for number, level in _LEVEL_NUMBERS.items()})


def normalize_level(value: Any) -> str | None:
    """One of common.record.LEVELS for a level word or number, or None if it is not one."""
    if isinstance(value, str):
        level = _LEVEL_BY_TEXT.get(value)
        return level if level is not None else _LEVEL_BY_TEXT.get(value.strip().lower())
    if isinstance(value, int) and not isinstance(value, bool):
        return _LEVEL_NUMBERS.get(value)
    return None


assert set(_LEVEL_WORDS) == set(LEVELS) and set(_LEVEL_NUMBERS.values()) <= set(LEVELS)
