"""Reading a `type: journald` input (shipper.journal reads the journal it names).

Only the keys a journal input has are accepted: a file input's `paths` or
`format` under `type: journald` is an unknown key, not silently ignored.
"""

from __future__ import annotations

import os
import re
from typing import Any

from common.config.schema import InputConfig, JournaldConfig
from common.config.values import _choice, _Section, _string, _strings
from common.durations import parse_size

# journalctl's priority names (and opslog's level words for the same numbers): `priority: warning`
# keeps emerg..warning, as `journalctl --priority=warning` does.
PRIORITIES = {"emerg": 0, "alert": 1, "crit": 2, "critical": 2, "err": 3, "error": 3, "warning": 4, "warn": 4,
              "notice": 5, "info": 6, "debug": 7}
# A journal field name: upper-case letters, digits and underscores, not starting with a digit
# (journald's own rule); one leading underscore marks a trusted field, two an address field
# (__CURSOR...) that cannot be matched.
_FIELD = re.compile(r"(?!__)[A-Z_][A-Z0-9_]*")


def _priority(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return value
    if isinstance(value, str) and value.strip().lower() in PRIORITIES:
        return PRIORITIES[value.strip().lower()]
    if isinstance(value, str) and value.strip().isdigit() and 0 <= int(value) <= 7:
        return int(value)
    raise ValueError(f"must be 0..7 or one of {', '.join(PRIORITIES)}, got {value!r}")


def _matches(value: Any) -> tuple[str, ...]:
    matches = _strings(value)
    for match in matches:
        name, sep, _ = match.partition("=")
        if not sep or not _FIELD.fullmatch(name):
            raise ValueError(f"{match!r} is not FIELD=value (FIELD in upper-case letters, digits and _)")
    return matches


def _directory(value: Any) -> str:
    return os.path.abspath(os.path.expanduser(_string(value)))


def journald_input(s: _Section) -> InputConfig:
    """The input of a `type: journald` mapping (its `type` already read by the caller)."""
    journald = JournaldConfig(
        units=s.get("units", (), _strings),
        identifiers=s.get("identifiers", (), _strings),
        priority=s.get("priority", None, _priority),
        matches=s.get("matches", (), _matches),
        directory=s.get("directory", None, _directory))
    cfg = InputConfig(
        paths=(), app=s.get("app", "", _string), type="journald", journald=journald,
        start_at=s.get("start_at", "beginning", _choice("beginning", "end")),
        max_line_bytes=s.get("max_line_bytes", 1 << 20, parse_size))
    s.finish()
    return cfg
