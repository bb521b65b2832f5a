"""logfmt lines (`ts=... level=info msg="request done" status=200`) into records.

The format of Go services (go-kit, logrus' text formatter, Grafana's tools) and
Heroku, as go-logfmt reads it: pairs separated by spaces; a key is a run of
characters other than space, `=` and `"`; a value is bare (no space, `=` or
`"`) or double-quoted with Go's escapes; `key=` is an empty string and a bare
`key` alone is true.

`level`/`lvl`/`severity` give the record's level, `ts`/`time`/`t` its time and
`msg` its message; the other pairs are its fields, a bare value that is a
number becoming a number (a quoted one stays text: quoting says so). A key
whose value cannot be read as a level or a time stays in the fields.

A line that is not logfmt (an unclosed quote, a `"` or `=` inside a bare
value, no `key=value` pair at all) keeps no fields and gets a `parse_error`:
the shipper stores it raw.

Two readings give the same pairs. `read_pairs`, here, is the reference: str
methods for a line without backslashes, else one linear-time pattern whose
"bad" group catches what is not a pair. shipper._logfmt (C, built by setup.py
where a compiler is found) takes the common lines, pairs without escapes or
bare keys, at about three times the speed, and hands every other line back
to the reference; tests/test_logfmt_native.py holds the two to the same
answers. `NATIVE` says whether the C reading is there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

LEVEL_KEYS = ("level", "lvl", "severity")
TIME_KEYS = ("ts", "time", "t")
MESSAGE_KEY = "msg"

_TOKEN = re.compile(r'([^\s="]+)(?:(=)("[^"\\]*(?:\\.[^"\\]*)*"|[^\s"=]*))?(?=\s|\Z)|(\S+)')
_ESCAPE = re.compile(r'\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)', re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "0": "\0"}
# A bare number, in one match: its digits, and a fraction or exponent when it is a float. An integer
# is `0` or starts with 1-9 and has at most 19 digits (then int64's range decides); a float is finite.
_NUMBER = re.compile(r"-?(\d+)(\.\d+(?:[eE][-+]?\d+)?|[eE][-+]?\d+)?")
_INT64_MAX = (1 << 63) - 1
_NUMERIC = frozenset("-0123456789")


try:
    from shipper._logfmt import split as _split_common
except ImportError:  # not compiled (setup.py builds it where it can): the reference reads every line
    _split_common = None
NATIVE = _split_common is not None


class LogfmtError(ValueError):
    """The line is not logfmt; the text says where it stops being one."""


def _unescape(match: re.Match[str]) -> str:
    code = match[1]
    if len(code) > 1:  # \uXXXX or \xHH
        return chr(int(code[1:], 16))
    return _ESCAPES.get(code, "\\" + code)  # an escape Go would not write: keep it as it is


def _number(text: str) -> Any:
    """A bare value starting like a number: the number, or `text` when it is not one (a time,
    a hex id) or cannot be kept as one. One match decides, not an int() and a float() tried."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return text
    if match[2]:
        real = float(text)
        return real if math.isfinite(real) else text
    digits = match[1]
    if len(digits) > 19 or not ("1" <= digits[0] <= "9" or digits == "0"):
        return text
    number = int(text)
    return number if -_INT64_MAX - 1 <= number <= _INT64_MAX else text  # BSON holds int64


def _value(text: str) -> Any:
    """A value as the record keeps it: a quoted one unescaped, a bare number as a number."""
    if text[:1] == '"':
        text = text[1:-1]
        return _ESCAPE.sub(_unescape, text) if "\\" in text else text
    return _number(text) if text and text[0] in _NUMERIC else text


def split_pairs(line: str) -> dict[str, Any]:
    """The line's pairs in order (a repeated key: the last one wins); LogfmtError if it is not logfmt."""
    if _split_common is not None:
        pairs = _split_common(line)
        if pairs is not None:
            return pairs
    return read_pairs(line)


def read_pairs(line: str) -> dict[str, Any]:
    """`split_pairs` in Python alone: the reference the C reading is held to."""
    return _split_quotes(line) if "\\" not in line else _split_escaped(line)


def _no_pair(pairs: dict[str, Any]) -> bool:
    return all(value is True for value in pairs.values())


def _split_escaped(line: str) -> dict[str, Any]:
    """Any line, through `_TOKEN`: each token a pair, else the "bad" group catches what is not one."""
    pairs: dict[str, Any] = {}
    for key, equals, value, bad in _TOKEN.findall(line):
        if bad:
            raise LogfmtError(f"not logfmt at {bad[:40]!r}")
        pairs[key] = _value(value) if equals else True
    if _no_pair(pairs):
        raise LogfmtError("no key=value pair")
    return pairs


def _split_quotes(line: str) -> dict[str, Any]:
    """A line without backslashes, the common case, cut at its quotes and spaces by str methods
    (twice as fast as `_TOKEN`): the odd pieces are quoted values, the even ones bare pairs."""
    pieces = line.split('"')
    last = len(pieces) - 1
    if last % 2:
        raise LogfmtError("unclosed quote")
    pairs: dict[str, Any] = {}
    number, numeric = _number, _NUMERIC
    found = bare = False  # a key=value pair seen; a bare key seen (it may have replaced every pair)
    for i in range(0, last + 1, 2):
        region = pieces[i]
        if i and region and not region[0].isspace():
            raise LogfmtError(f"text right after a quoted value: {region[:40]!r}")
        tokens = region.split()
        if i < last:  # a quoted value follows: the region ends with its `key=`
            if not region.endswith("=") or not tokens:
                raise LogfmtError(f"a quote outside a value: {region[-40:]!r}")
            key = tokens.pop()[:-1]
            if not key or "=" in key:
                raise LogfmtError(f"a quoted value without a key: {region[-40:]!r}")
            quoted: tuple[str, str] | None = (key, pieces[i + 1])
        else:
            quoted = None
        for token in tokens:
            key, equals, value = token.partition("=")
            if equals:
                if not key or "=" in value:
                    raise LogfmtError(f"not logfmt at {token[:40]!r}")
                pairs[key] = number(value) if value and value[0] in numeric else value
                found = True
            else:
                pairs[key] = True
                bare = True
        if quoted is not None:
            pairs[quoted[0]] = quoted[1]
            found = True
    if not found or (bare and _no_pair(pairs)):
        raise LogfmtError("no key=value pair")
    return pairs


def logfmt_parser(parsed: Callable[..., Any], parse_time: Callable[[Any], float | None],
                  level_of: Callable[[Any], str | None]) -> Callable[[str], Any]:
    """A parser `str -> parsed(ts, level, fields, error, message)` for one input: `parse_time` reads
    its times (in its timezone), `level_of` its level words. Built by shipper.parsers."""
    split = split_pairs

    def parse_logfmt(line: str) -> Any:
        try:
            fields = split(line)
        except LogfmtError as exc:
            return parsed(None, None, {}, str(exc))
        ts = level = message = None
        for key in TIME_KEYS:
            if key in fields:
                ts = parse_time(fields[key])
                if ts is not None:
                    del fields[key]
                break
        for key in LEVEL_KEYS:
            if key in fields:
                level = level_of(fields[key])
                if level is not None:
                    del fields[key]
                break
        if MESSAGE_KEY in fields:
            message = fields.pop(MESSAGE_KEY)
            if not isinstance(message, str):  # `msg=42` or a bare `msg`: the text it was
                message = "" if message is True else str(message)
        return parsed(ts, level, fields, None, message)
    return parse_logfmt
