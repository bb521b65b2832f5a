"""One raw line (or multiline event) in; its event time, level and named fields out.

`build_parser(cfg)` returns a pure function `str -> Parsed` for the input's
format. That function never raises and never drops a line: a line it cannot
read comes back with `error` set (the record's `parse_error`) and no fields.
Fields are kept within common.fields' bounds (depth, keys, size); a line whose
fields were bounded says so in `error`, as a truncated line does.

This module holds the line formats (plain, json, regex) and the table of all
formats; the others have a module each: shipper.parse_syslog,
shipper.parse_access (nginx, apache), shipper.logfmt. What a parser returns
and the level words are in shipper.parsed, times in shipper.times.
The built-in formats use stdlib `re` patterns written to run in linear time;
user patterns (`format: regex`) go through common.patterns.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import orjson

from common.config import InputConfig
from common.fields import Unencodable, bound_fields, may_exceed
from common.patterns import PatternTimeoutError, compile_pattern
from shipper.parse_access import apache_common_parser, nginx_combined_parser
from shipper.parse_syslog import syslog_parser
from shipper.parsed import LEVEL_KEYS, TIME_KEYS, Parsed, Parser, normalize_level
from shipper.times import ISO, Times, zone

__all__ = ["Parsed", "Parser", "build_parser", "normalize_level"]


# --- formats --------------------------------------------------------------

def _plain(cfg: InputConfig, times: Times) -> Parser:
    # A leading timestamp and a level word right after it (or a bracketed/upper-case
    # level word opening the line). Most lines fail on their first character.
    head = re.compile(
        rf"\[?{ISO.pattern}\]?(?:[ \t]+\[?(?P<level>[A-Za-z]{{3,13}})\]?(?![\w.]))?"
        r"|\[?(?P<word>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|SEVERE|ALERT|EMERG)\]?"
        r"(?![\w.])").match
    iso = times.iso

    def parse_plain(line: str) -> Parsed:
        match = head(line)
        if match is None:
            return Parsed(None, None, {}, None)
        second, fraction, zone, word, first = match.group("second", "fraction", "zone", "level", "word")
        return Parsed(iso(second, fraction, zone) if second else None, normalize_level(word or first), {}, None)
    return parse_plain


def _json(cfg: InputConfig, times: Times) -> Parser:
    loads, decode_error = orjson.loads, orjson.JSONDecodeError

    def parse_json(line: str) -> Parsed:
        try:
            obj = loads(line)
        except decode_error as exc:
            return Parsed(None, None, {}, f"invalid JSON: {exc}")
        if type(obj) is not dict:
            return Parsed(None, None, {}, f"JSON line is {type(obj).__name__}, not an object")
        ts = level = None
        for key in TIME_KEYS:
            if key in obj:
                ts = times.of_value(obj[key])
                break
        for key in LEVEL_KEYS:
            if key in obj:
                level = normalize_level(obj[key])
                break
        return Parsed(ts, level, obj, None)
    return parse_json


def _regex(cfg: InputConfig, times: Times) -> Parser:
    if not cfg.pattern:
        raise ValueError("format 'regex' needs a pattern")
    pattern = compile_pattern(cfg.pattern, cfg.regex_engine, cfg.regex_timeout)
    search = pattern.search
    ts_key = next((key for key in TIME_KEYS if key in pattern.groupindex), None)
    level_key = next((key for key in LEVEL_KEYS if key in pattern.groupindex), None)

    def parse_regex(line: str) -> Parsed:
        try:
            match = search(line)
            if match is None and "\n" in line:
                # a multiline event (stack trace): the pattern describes its first line
                match = search(line[:line.index("\n")])
        except PatternTimeoutError as exc:
            return Parsed(None, None, {}, str(exc))
        if match is None:
            return Parsed(None, None, {}, "line does not match the input's pattern")
        fields = match.groupdict()
        stamp = fields[ts_key] if ts_key else None
        level = fields[level_key] if level_key else None
        return Parsed(times.parse(stamp) if stamp else None,
                      normalize_level(level) if level else None, fields, None)
    return parse_regex


def _logfmt(cfg: InputConfig, times: Times) -> Parser:
    from shipper.logfmt import logfmt_parser  # it builds on this module's Parsed, times and levels
    return logfmt_parser(Parsed, times.of_value, normalize_level)


_FORMATS: dict[str, Callable[[InputConfig, Times], Parser]] = {
    "plain": _plain, "json": _json, "syslog": syslog_parser, "nginx_combined": nginx_combined_parser,
    "apache_common": apache_common_parser, "regex": _regex, "logfmt": _logfmt,
    # container logs: shipper.container unwraps the runtime's framing; the line inside is read as plain
    "cri": _plain, "docker": _plain,
}


def build_parser(cfg: InputConfig, *, clock: Callable[[], float] = time.time) -> Parser:
    """The parse function for one input; `clock` (for tests) dates year-less syslog times.

    Raises ValueError (PatternError) for a config that validation would have refused.
    """
    try:
        make = _FORMATS[cfg.format]
    except KeyError:
        raise ValueError(f"unknown format {cfg.format!r}") from None
    parse = make(cfg, Times(zone(cfg.timezone), clock))

    def parse_line(line: str) -> Parsed:
        try:
            parsed = parse(line)
            if parsed.fields and may_exceed(line):
                return _bounded(parsed, len(line))
            return parsed
        except Exception as exc:  # noqa: BLE001 - a parser bug must cost a line its fields, never the line
            return Parsed(None, None, {}, f"{cfg.format} parser failed: {type(exc).__name__}: {exc}")
    return parse_line


def _bounded(parsed: Parsed, text_size: int) -> Parsed:
    """`parsed` with its fields within common.fields' bounds, flagged in `error` when they were
    not; fields that cannot be kept at all leave the line raw (its time and level stay)."""
    try:
        fields, note = bound_fields(parsed.fields, text_size)
    except Unencodable as exc:
        return parsed._replace(fields={}, error=f"fields cannot be stored ({exc}); the line is kept raw")
    if note is None:
        return parsed
    return parsed._replace(fields=fields, error=f"{parsed.error}; {note}" if parsed.error else note)
