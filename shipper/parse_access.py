"""`format: nginx_combined` and `apache_common`: web servers' access logs.

The request line is split into method, path and protocol; the status sets the
level (5xx error, 4xx warning, else info); `-` in an optional field is null.
"""

from __future__ import annotations

import re

from common.config import InputConfig
from shipper.parsed import Parsed, Parser
from shipper.times import Times


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


def _access_log(combined: bool, what: str, times: Times) -> Parser:
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


def nginx_combined_parser(cfg: InputConfig, times: Times) -> Parser:
    return _access_log(True, "nginx combined log", times)


def apache_common_parser(cfg: InputConfig, times: Times) -> Parser:
    return _access_log(False, "apache common log", times)
