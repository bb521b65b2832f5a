"""One raw line (or multiline event) in; its event time, level and named fields out.

`build_parser(cfg)` returns a pure function `str -> Parsed` for the input's
format. That function never raises and never drops a line: a line it cannot
read comes back with `error` set (the record's `parse_error`) and no fields.
Fields are kept within common.fields' bounds (depth, keys, size); a line whose
fields were bounded says so in `error`, as a truncated line does.

Times become UTC epoch seconds; a time without an offset is read in the input's
`timezone`. A busy log repeats the same second on many lines, so each parser
converts a given second once (`_Times`) and adds the fraction afterwards.
The built-in formats use stdlib `re` patterns written to run in linear time;
user patterns (`format: regex`) go through common.patterns.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from common.config import InputConfig
from common.fields import Unencodable, bound_fields, may_exceed
from common.patterns import PatternTimeoutError, compile_pattern


class Parsed(NamedTuple):
    ts: float | None        # event time, epoch seconds UTC; None if the line has none
    level: str | None       # one of common.record.LEVELS or None
    fields: dict[str, Any]  # parsed named values, JSON-serialisable, within common.fields' bounds
    error: str | None       # parse_error text when parsing failed (fields then {}) or fields were bounded
    message: str | None = None  # the record's message when the format names one (logfmt `msg`); else the line


Parser = Callable[[str], Parsed]

TIME_KEYS = ("ts", "time", "@timestamp", "timestamp")
LEVEL_KEYS = ("level", "severity", "lvl", "log.level")


# --- levels ---------------------------------------------------------------

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


# --- times ----------------------------------------------------------------

_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_EPOCH_MIN, _EPOCH_MAX = -62135596800.0, 253402300799.0  # what a BSON/Python datetime can hold
_ISO = re.compile(r"(?P<second>\d{4}[-/]\d\d[-/]\d\d[T ]\d\d:\d\d:\d\d)(?:[.,](?P<fraction>\d{1,9}))?"
                  r"(?P<zone> ?(?:Z|[+-]\d\d(?::?\d\d)?))?")
_CLF = re.compile(r"(\d\d?)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?: ([+-])(\d\d):?(\d\d))?")
_BSD = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d\d?) (\d\d):(\d\d):(\d\d)")
_NUMBER = re.compile(r"-?\d{9,}(?:\.\d*)?")


def _epoch(value: float) -> float | None:
    """Epoch seconds from seconds, or from milli/micro/nanoseconds (told apart by size)."""
    if not math.isfinite(value):
        return None
    while abs(value) >= 1e11:  # 1e11 s is the year 5138: a bigger number counts smaller units
        value /= 1000
    return float(value) if _EPOCH_MIN <= value <= _EPOCH_MAX else None


class _Times:
    """Time strings -> UTC epoch seconds for one input: its zone, its clock, its caches."""

    def __init__(self, tz: tzinfo, clock: Callable[[], float]):
        self.tz, self.clock = tz, clock
        self._whole = lru_cache(maxsize=4096)(self._parse_whole)
        self._bsd = lru_cache(maxsize=1024)(self._parse_bsd)
        self.clf = lru_cache(maxsize=1024)(self._parse_clf)

    def parse(self, text: str) -> float | None:
        """ISO-8601, common log format, `Mmm dd hh:mm:ss`, RFC 2822 or epoch digits; None if none fits."""
        match = _ISO.fullmatch(text)
        if match is not None:
            return self.iso(*match.group("second", "fraction", "zone"))
        if _BSD.fullmatch(text):
            return self.bsd(text)
        return self._whole(text)

    def iso(self, second: str, fraction: str | None, zone: str | None) -> float | None:
        """The parts of an ISO-8601 time as `_ISO` splits them: each second converted once."""
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
            return _epoch(moment.timestamp())
        except (OverflowError, ValueError):
            return None

    def _parse_whole(self, text: str) -> float | None:
        text = text.strip()
        if _NUMBER.fullmatch(text):
            return _epoch(float(text))
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
        return _epoch(epoch)

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
            return _epoch(value)
        return None


def _zone(name: str) -> tzinfo:
    return UTC if name in ("UTC", "Etc/UTC", "Z") else ZoneInfo(name)


# --- formats --------------------------------------------------------------

def _plain(cfg: InputConfig, times: _Times) -> Parser:
    # A leading timestamp and a level word right after it (or a bracketed/upper-case
    # level word opening the line). Most lines fail on their first character.
    head = re.compile(
        rf"\[?{_ISO.pattern}\]?(?:[ \t]+\[?(?P<level>[A-Za-z]{{3,13}})\]?(?![\w.]))?"
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


def _json(cfg: InputConfig, times: _Times) -> Parser:
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


_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
               "ftp", "ntp", "security", "console", "solaris-cron", *(f"local{i}" for i in range(8)))
_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>\d{1,2} (?P<ts>\S+) (?P<host>\S+) (?P<appname>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r'(?P<sd>-|(?:\[(?:[^\]"\\]|\\.|"[^"\\]*(?:\\.[^"\\]*)*")*\])+)(?: \ufeff?(?P<message>.*))?', re.DOTALL)
_RFC3164 = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (?P<host>\S+)"
    r"(?: (?P<appname>[^\s\[\]:]+)(?:\[(?P<procid>[^\]]*)\])?:(?= |$))? ?(?P<message>.*)", re.DOTALL)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=]+)(?P<params>(?: [^\s=\]]+="[^"\\]*(?:\\.[^"\\]*)*")*) ?\]')
_SD_PARAM = re.compile(r'([^\s=\]]+)="([^"\\]*(?:\\.[^"\\]*)*)"')
_SD_UNESCAPE = re.compile(r'\\([\\"\]])')


def _structured_data(text: str) -> dict[str, dict[str, str]]:
    elements: dict[str, dict[str, str]] = {}
    for element in _SD_ELEMENT.finditer(text):
        params = elements[element["id"]] = {}
        for name, value in _SD_PARAM.findall(element["params"]):
            params[name] = _SD_UNESCAPE.sub(r"\1", value) if "\\" in value else value
    return elements


def _syslog(cfg: InputConfig, times: _Times) -> Parser:
    rfc5424, rfc3164 = _RFC5424.match, _RFC3164.match

    def parse_syslog(line: str) -> Parsed:
        match = rfc5424(line) if line.startswith("<") else None
        if match is not None:
            pri, stamp, host, appname, procid, msgid, data, message = match.groups()
            ts = None if stamp == "-" else times.parse(stamp)
            fields = {}
            if host != "-":
                fields["host"] = host
            if appname != "-":
                fields["appname"] = appname
            if procid != "-":
                fields["procid"] = procid
            if msgid != "-":
                fields["msgid"] = msgid
            if data != "-":
                fields["structured_data"] = _structured_data(data)
        else:
            match = rfc3164(line)
            if match is None:
                return Parsed(None, None, {}, "not a syslog line (RFC 3164 or RFC 5424)")
            pri, stamp, host, appname, procid, message = match.groups()
            ts = times.bsd(stamp) if stamp[0].isalpha() else times.parse(stamp)
            fields = {"host": host}
            if appname is not None:
                fields["appname"] = appname
            if procid is not None:
                fields["procid"] = procid
        level = None
        if pri is not None and int(pri) < 192:
            fields["facility"] = _FACILITIES[int(pri) >> 3]
            level = _LEVEL_NUMBERS[int(pri) & 7]
        fields["message"] = message or ""
        return Parsed(ts, level, fields, None)
    return parse_syslog


def _access_patterns(combined: bool) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The line pattern for lines without a backslash, and the one for lines with one.

    Servers escape a `"` inside a value (apache `\\"`, nginx `\\x22`), so a quoted
    value is `[^"\\]*(?:\\.[^"\\]*)*`; without a backslash in the line that is
    just `[^"]*`, which `re` matches in a third of the time.
    """
    def build(quoted: str) -> re.Pattern[str]:
        text = (r"(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time_local>[^\]]*)\] "
                + quoted.format("request") + r" (?P<status>\d{3}) (?P<body_bytes_sent>\d+|-)")
        if combined:
            text += " " + quoted.format("referer") + " " + quoted.format("user_agent")
        return re.compile(text)
    return build(r'"(?P<{}>[^"]*)"'), build(r'"(?P<{}>[^"\\]*(?:\\.[^"\\]*)*)"')


def _access_log(combined: bool, what: str, times: _Times) -> Parser:
    plain, escaped = _access_patterns(combined)
    match_plain, match_escaped, time_local = plain.match, escaped.match, times.clf
    no_match = f"not an {what} line"
    optional = ("remote_user", "referer", "user_agent") if combined else ("remote_user",)

    def parse_access(line: str) -> Parsed:
        match = match_plain(line) if "\\" not in line else match_escaped(line)
        if match is None:
            return Parsed(None, None, {}, no_match)
        fields = match.groupdict()
        for name in optional:
            if fields[name] == "-":
                fields[name] = None
        request = fields.pop("request")
        parts = request.split(" ")
        if len(parts) == 3:
            fields["method"], fields["path"], fields["protocol"] = parts
        elif len(parts) == 2:  # HTTP/0.9: "GET /"
            fields["method"], fields["path"], fields["protocol"] = parts[0], parts[1], None
        else:  # "-", a TLS handshake sent to a plain port, ...: keep it whole
            fields["method"] = fields["path"] = fields["protocol"] = None
            fields["request"] = request
        status = fields["status"] = int(fields["status"])
        size = fields["body_bytes_sent"]
        fields["body_bytes_sent"] = 0 if size == "-" else int(size)
        level = "error" if status >= 500 else "warning" if status >= 400 else "info"
        return Parsed(time_local(fields["time_local"]), level, fields, None)
    return parse_access


def _nginx_combined(cfg: InputConfig, times: _Times) -> Parser:
    return _access_log(True, "nginx combined log", times)


def _apache_common(cfg: InputConfig, times: _Times) -> Parser:
    return _access_log(False, "apache common log", times)


def _regex(cfg: InputConfig, times: _Times) -> Parser:
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


def _logfmt(cfg: InputConfig, times: _Times) -> Parser:
    from shipper.logfmt import logfmt_parser  # it builds on this module's Parsed, times and levels
    return logfmt_parser(Parsed, times.of_value, normalize_level)


_FORMATS: dict[str, Callable[[InputConfig, _Times], Parser]] = {
    "plain": _plain, "json": _json, "syslog": _syslog, "nginx_combined": _nginx_combined,
    "apache_common": _apache_common, "regex": _regex, "logfmt": _logfmt,
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
    parse = make(cfg, _Times(_zone(cfg.timezone), clock))

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
