"""`format: syslog`: RFC 5424 and RFC 3164 (BSD) lines, with facility and severity.

The host, app name, process id, message id and structured data become fields;
a year-less BSD time is dated in the most recent year that fits (shipper.times).
"""

from __future__ import annotations

import re

from common.config import InputConfig
from shipper.parsed import Parsed, Parser, normalize_level
from shipper.times import Times

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


def syslog_parser(cfg: InputConfig, times: Times) -> Parser:
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
            level = normalize_level(int(pri) & 7)
        fields["message"] = message or ""
        return Parsed(ts, level, fields, None)
    return parse_syslog
