"""Parsers: every line comes back, parsed when it can be, with parse_error when not."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from common.config import FORMATS, InputConfig
from common.patterns import PatternError
from common.record import LEVELS
from shipper import parsers
from shipper.parsers import Parsed, build_parser, normalize_level

NGINX_LINE = ('203.0.113.7 - - [26/Nov/2026:10:00:00 +0100] "GET /cart?id=7 HTTP/1.1" 200 612 '
              '"https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)"')
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def parser(fmt: str, clock: float = NOW, **options: Any) -> parsers.Parser:
    return build_parser(InputConfig(paths=("x",), app="a", format=fmt, **options), clock=lambda: clock)


def epoch(*parts: int, tz: str = "UTC", micro: int = 0) -> float:
    return datetime(*parts, micro, tzinfo=ZoneInfo(tz)).timestamp()


def failed(result: Parsed) -> bool:
    return result.error is not None and result.fields == {} and result.ts is None and result.level is None


# --- nginx / apache ---------------------------------------------------------

def test_nginx_combined_line_gives_every_field_and_a_utc_time() -> None:
    result = parser("nginx_combined")(NGINX_LINE)

    assert result == Parsed(epoch(2026, 11, 26, 9, 0, 0), "info", {
        "remote_addr": "203.0.113.7", "remote_user": None, "time_local": "26/Nov/2026:10:00:00 +0100",
        "status": 200, "body_bytes_sent": 612, "referer": "https://shop.example/",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "method": "GET", "path": "/cart?id=7",
        "protocol": "HTTP/1.1"}, None)


@pytest.mark.parametrize(("status", "level"), [(200, "info"), (304, "info"), (404, "warning"),
                                               (499, "warning"), (500, "error"), (503, "error")])
def test_nginx_level_follows_status_5xx_error_4xx_warning_else_info(status: int, level: str) -> None:
    result = parser("nginx_combined")(NGINX_LINE.replace(" 200 ", f" {status} "))

    assert (result.fields["status"], result.level) == (status, level)


def test_nginx_dash_bytes_are_zero_and_dash_user_referer_agent_are_none() -> None:
    line = '10.0.0.1 - - [26/Nov/2026:10:00:00 +0000] "HEAD / HTTP/1.0" 204 - "-" "-"'

    fields = parser("nginx_combined")(line).fields

    assert fields["body_bytes_sent"] == 0
    assert fields["remote_user"] is fields["referer"] is fields["user_agent"] is None


def test_nginx_escaped_quotes_inside_values_stay_inside_the_value() -> None:
    line = ('10.0.0.1 - - [26/Nov/2026:10:00:00 +0000] "GET /q?x=\\x22hi\\x22 HTTP/1.1" 200 5 "-" '
            '"curl \\"quoted\\" agent"')

    fields = parser("nginx_combined")(line).fields

    assert fields["path"] == "/q?x=\\x22hi\\x22"
    assert fields["user_agent"] == 'curl \\"quoted\\" agent'


def test_apache_request_with_escaped_quotes_cannot_fake_the_status() -> None:
    # a client-chosen URL `/a" 200 1 "` is logged by apache as /a\" 200 1 \"
    line = '10.0.0.1 - - [26/Nov/2026:10:00:00 +0000] "GET /a\\" 200 1 \\" HTTP/1.1" 404 9'

    result = parser("apache_common")(line)

    assert (result.fields["status"], result.fields["body_bytes_sent"], result.level) == (404, 9, "warning")


def test_request_that_is_not_method_path_protocol_is_kept_whole() -> None:
    line = '10.0.0.1 - - [26/Nov/2026:10:00:00 +0000] "\\x16\\x03\\x01\\x02\\x00" 400 157 "-" "-"'

    fields = parser("nginx_combined")(line).fields

    assert fields["method"] is fields["path"] is fields["protocol"] is None
    assert fields["request"] == "\\x16\\x03\\x01\\x02\\x00"


def test_apache_common_line_has_no_referer_or_agent() -> None:
    line = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'

    result = parser("apache_common")(line)

    assert result.ts == epoch(2000, 10, 10, 20, 55, 36)
    assert result.fields == {"remote_addr": "127.0.0.1", "remote_user": "frank",
                             "time_local": "10/Oct/2000:13:55:36 -0700", "status": 200, "body_bytes_sent": 2326,
                             "method": "GET", "path": "/apache_pb.gif", "protocol": "HTTP/1.0"}


@pytest.mark.parametrize("fmt", ["nginx_combined", "apache_common"])
def test_line_that_is_not_an_access_log_is_kept_with_parse_error(fmt: str) -> None:
    result = parser(fmt)("upstream timed out (110: Connection timed out) while reading response header")

    assert failed(result) and "not an" in result.error


# --- json -------------------------------------------------------------------

def test_json_line_gives_the_object_as_fields_with_time_and_level() -> None:
    line = '{"ts": "2026-11-26T10:00:00.250Z", "level": "WARN", "msg": "disk 91% full", "disk": {"pct": 91}}'

    result = parser("json")(line)

    assert result == Parsed(epoch(2026, 11, 26, 10, 0, 0, micro=250000), "warning",
                            {"ts": "2026-11-26T10:00:00.250Z", "level": "WARN", "msg": "disk 91% full",
                             "disk": {"pct": 91}}, None)


@pytest.mark.parametrize(("key", "value"), [("time", 1795687200), ("time", 1795687200.5),
                                            ("@timestamp", 1795687200000), ("timestamp", "1795687200"),
                                            ("ts", "2026-11-26T10:00:00+00:00")])
def test_json_time_as_iso_string_epoch_seconds_or_millis(key: str, value: Any) -> None:
    result = parser("json")(orjson.dumps({key: value}).decode())

    assert result.ts is not None and int(result.ts) == 1795687200


@pytest.mark.parametrize(("key", "value", "level"), [("level", "error", "error"), ("severity", "CRIT", "critical"),
                                                     ("lvl", "dbg", "debug"), ("level", 30, "info"),
                                                     ("log.level", "warn", "warning"), ("level", "chatty", None)])
def test_json_level_is_normalised_from_level_severity_or_lvl(key: str, value: Any, level: str | None) -> None:
    assert parser("json")(orjson.dumps({key: value, "msg": "x"}).decode()).level == level


def test_json_time_without_offset_is_read_in_the_configured_timezone() -> None:
    result = parser("json", timezone="Europe/Berlin")('{"time": "2026-07-01 12:00:00"}')

    assert result.ts == epoch(2026, 7, 1, 10, 0, 0)


def test_json_unreadable_time_leaves_ts_empty_but_keeps_the_fields() -> None:
    result = parser("json")('{"time": "yesterday-ish", "msg": "x"}')

    assert (result.ts, result.error, result.fields["time"]) == (None, None, "yesterday-ish")


@pytest.mark.parametrize("line", ["[1, 2, 3]", '"just a string"', "42", "null"])
def test_json_line_that_is_not_an_object_is_kept_with_parse_error(line: str) -> None:
    result = parser("json")(line)

    assert failed(result) and "not an object" in result.error


@pytest.mark.parametrize("line", ['{"msg": "cut off', "plain text", "", "{'single': 'quotes'}"])
def test_invalid_json_is_kept_with_parse_error(line: str) -> None:
    result = parser("json")(line)

    assert failed(result) and result.error.startswith("invalid JSON")


# --- syslog -----------------------------------------------------------------

def test_rfc3164_line_with_pri_gives_facility_level_host_tag_pid_message() -> None:
    line = "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8"

    result = parser("syslog")(line)

    assert result == Parsed(epoch(2026, 10, 11, 22, 14, 15), "critical", {
        "host": "mymachine", "appname": "su", "procid": "230", "facility": "auth",
        "message": "'su root' failed for lonvick on /dev/pts/8"}, None)


def test_var_log_syslog_line_without_pri_has_no_level() -> None:
    result = parser("syslog")("Nov  6 06:25:01 web-01 CRON[4242]: (root) CMD (run-parts /etc/cron.hourly)")

    assert result.level is None
    assert result.ts == epoch(2026, 11, 6, 6, 25, 1)
    assert result.fields == {"host": "web-01", "appname": "CRON", "procid": "4242",
                             "message": "(root) CMD (run-parts /etc/cron.hourly)"}


def test_rfc3164_line_without_tag_keeps_everything_after_host_as_message() -> None:
    assert parser("syslog")("Nov 26 10:00:00 web-01 -- MARK --").fields == {"host": "web-01", "message": "-- MARK --"}


def test_rfc3164_line_without_year_gets_the_current_year_in_the_configured_timezone() -> None:
    # 23:30 UTC on Dec 31 2025 is already 00:30 on Jan 1 2026 in Berlin
    new_years_eve = epoch(2025, 12, 31, 23, 30, 0)
    line = "Jan  1 00:10:00 web-01 app: happy new year"

    berlin = parser("syslog", clock=new_years_eve, timezone="Europe/Berlin")(line)
    utc = parser("syslog", clock=new_years_eve)(line)

    assert berlin.ts == epoch(2026, 1, 1, 0, 10, 0, tz="Europe/Berlin")
    assert utc.ts == epoch(2025, 1, 1, 0, 10, 0)


def test_rfc3164_december_line_read_in_january_belongs_to_last_year() -> None:
    result = parser("syslog", clock=epoch(2027, 1, 2, 8, 0, 0))("Dec 31 23:59:59 web-01 app: late")

    assert result.ts == epoch(2026, 12, 31, 23, 59, 59)


def test_rfc3164_feb_29_outside_a_leap_year_goes_to_the_last_leap_year() -> None:
    result = parser("syslog", clock=epoch(2027, 3, 1, 0, 0, 0))("Feb 29 12:00:00 web-01 app: leap")

    assert result.ts == epoch(2024, 2, 29, 12, 0, 0)


def test_debian_rsyslog_file_line_with_rfc3339_time() -> None:
    result = parser("syslog")("2026-11-26T10:00:00.123456+01:00 web-01 systemd[1]: Started nginx.service.")

    assert result.ts == epoch(2026, 11, 26, 9, 0, 0, micro=123456)
    assert result.fields == {"host": "web-01", "appname": "systemd", "procid": "1",
                             "message": "Started nginx.service."}


def test_rfc5424_line_gives_header_fields_structured_data_and_message() -> None:
    line = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
            '[exampleSDID@32473 iut="3" eventSource="Application"][x@1 q="a \\"b\\" \\]"] \ufeffAn event')

    result = parser("syslog")(line)

    assert result == Parsed(epoch(2003, 10, 11, 22, 14, 15, micro=3000), "info", {
        "host": "mymachine.example.com", "appname": "evntslog", "msgid": "ID47",
        "structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application"},
                            "x@1": {"q": 'a "b" ]'}},
        "facility": "local4", "message": "An event"}, None)


def test_rfc5424_nil_values_are_left_out() -> None:
    assert parser("syslog")("<11>1 - - - - - -") == Parsed(None, "error", {"facility": "user", "message": ""}, None)


def test_line_that_is_not_syslog_is_kept_with_parse_error() -> None:
    result = parser("syslog")("hello world")

    assert failed(result) and "not a syslog line" in result.error


# --- plain ------------------------------------------------------------------

@pytest.mark.parametrize(("line", "ts", "level"), [
    ("2026-11-26 10:00:00,123 ERROR [main] c.e.App - boom", epoch(2026, 11, 26, 10, 0, 0, micro=123000), "error"),
    ("2026-11-26T10:00:00Z INFO started", epoch(2026, 11, 26, 10, 0, 0), "info"),
    ("[2026-11-26 10:00:00.5+01:00] [warning] slow", epoch(2026, 11, 26, 9, 0, 0, micro=500000), "warning"),
    ("2026/11/26 10:00:00 [error] 123#0: *1 open() failed", epoch(2026, 11, 26, 10, 0, 0), "error"),
    ("2026-11-26 10:00:00 nothing special", epoch(2026, 11, 26, 10, 0, 0), None),
    ("WARNING:root:low disk", None, "warning"),
    ("[ERROR] cannot connect", None, "error"),
])
def test_plain_line_picks_up_a_leading_timestamp_and_level_word(line: str, ts: float | None,
                                                                level: str | None) -> None:
    assert parser("plain")(line) == Parsed(ts, level, {}, None)


@pytest.mark.parametrize("line", ["I am a line", "Error-free run", "hello ERROR later", "", "   "])
def test_plain_line_without_leading_time_or_level_is_kept_without_error(line: str) -> None:
    assert parser("plain")(line) == Parsed(None, None, {}, None)


def test_plain_time_without_offset_is_read_in_the_configured_timezone() -> None:
    result = parser("plain", timezone="America/New_York")("2026-01-15 08:00:00 INFO hi")

    assert result.ts == epoch(2026, 1, 15, 13, 0, 0)


# --- regex ------------------------------------------------------------------

APP_PATTERN = r"^(?P<ts>\S+ \S+) \[(?P<level>\w+)\] (?P<logger>[\w.]+): (?P<msg>.*)$"


@pytest.mark.parametrize("engine", ["re2", "backtracking"])
def test_regex_named_groups_become_fields_with_time_and_level(engine: str) -> None:
    result = parser("regex", pattern=APP_PATTERN, regex_engine=engine)("2026-11-26 10:00:00 [warn] db.pool: busy")

    assert result == Parsed(epoch(2026, 11, 26, 10, 0, 0), "warning",
                            {"ts": "2026-11-26 10:00:00", "level": "warn", "logger": "db.pool", "msg": "busy"}, None)


@pytest.mark.parametrize(("stamp", "expected"), [("26/Nov/2026:10:00:00 +0000", epoch(2026, 11, 26, 10, 0, 0)),
                                                 ("1795687200", 1795687200.0),
                                                 ("Nov 25 10:00:00", epoch(2026, 11, 25, 10, 0, 0)),
                                                 ("Wed, 25 Nov 2026 10:00:00 GMT", epoch(2026, 11, 25, 10, 0, 0)),
                                                 ("not a time", None)])
def test_regex_time_group_in_common_formats(stamp: str, expected: float | None) -> None:
    result = parser("regex", pattern=r"^(?P<time>[^|]+)\|")(f"{stamp}|rest")

    assert (result.ts, result.error) == (expected, None)


def test_regex_line_that_does_not_match_is_kept_with_parse_error() -> None:
    result = parser("regex", pattern=APP_PATTERN)("something else entirely")

    assert failed(result) and "does not match" in result.error


def test_regex_multiline_event_is_matched_by_its_first_line() -> None:
    event = "2026-11-26 10:00:00 [error] app.main: crash\nTraceback (most recent call last):\n  File \"x\""

    result = parser("regex", pattern=APP_PATTERN)(event)

    assert (result.level, result.fields["msg"], result.error) == ("error", "crash", None)


@pytest.mark.timeout(10)
def test_re2_nested_quantifier_on_100_kib_line_finishes_and_the_line_gets_parse_error() -> None:
    # (a+)+$ against 100 KiB of 'a' then 'b': no match, found in linear time
    result = parser("regex", pattern=r"(?P<run>a+)+$")("a" * 100 * 1024 + "b")

    assert failed(result) and "does not match" in result.error


@pytest.mark.timeout(10)
def test_backtracking_engine_with_catastrophic_pattern_hits_its_time_limit_and_line_gets_parse_error() -> None:
    parse = parser("regex", pattern=r"(?P<run>a+)+$", regex_engine="backtracking", regex_timeout=0.05)

    result = parse("a" * 100 * 1024 + "b")

    assert failed(result) and "regex_timeout" in result.error


def test_pattern_re2_cannot_compile_fails_when_the_parser_is_built() -> None:
    with pytest.raises(PatternError, match="regex_engine: backtracking"):
        parser("regex", pattern=r"(?P<w>\w+) \1")


# --- every format -----------------------------------------------------------

NASTY = ["", "\n", "\x00" * 64, "\ufffd\ufffd\x00{\"a\":1}\x00", "ab\x00cd \ufffd [26/Nov/2026:10:00:00 +0000]",
         '{"level": "\x00", "ts": "\ufffd"}', "\udcff\udcfe lone surrogates", "<999>Jan  1 00:00:00 h t: m",
         '"' * 10_000, "[" * 10_000, "a " * 50_000, "2026-11-26 " * 10_000, NGINX_LINE.replace(" ", "\x00")]
OPTIONS = {"regex": {"pattern": APP_PATTERN}}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("fmt", FORMATS)
def test_invalid_utf8_replacement_chars_nul_bytes_and_huge_lines_do_not_crash_any_parser(fmt: str) -> None:
    parse = parser(fmt, **OPTIONS.get(fmt, {}))
    for line in NASTY:
        result = parse(line)
        assert isinstance(result, Parsed)
        assert result.level in (None, *LEVELS)
        assert result.error is None or result.fields == {}
        orjson.dumps(result.fields)  # what the record will carry


def test_a_bug_inside_a_parser_costs_the_line_its_fields_not_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cfg: InputConfig, times: object) -> parsers.Parser:
        return lambda line: Parsed(None, None, {}, str(1 / 0))
    monkeypatch.setitem(parsers._FORMATS, "plain", broken)

    result = parser("plain")("anything")

    assert failed(result) and "ZeroDivisionError" in result.error


# --- levels -----------------------------------------------------------------

@pytest.mark.parametrize(("value", "level"), [
    ("WARN", "warning"), ("warning", "warning"), ("W", "warning"), ("err", "error"), ("ERROR", "error"),
    ("fatal", "critical"), ("crit", "critical"), ("emerg", "critical"), ("notice", "info"), ("trace", "debug"),
    ("DEBUG", "debug"), (" Info ", "info"), ("SEVERE", "error"),
    (0, "critical"), (1, "critical"), (2, "critical"), (3, "error"), (4, "warning"), (5, "info"), (6, "info"),
    (7, "debug"), ("3", "error"), (20, "debug"), (50, "error"), (60, "critical"),
])
def test_levels_are_normalised(value: Any, level: str) -> None:
    assert normalize_level(value) == level


@pytest.mark.parametrize("value", [None, True, False, 3.0, 8, -1, "", "chatty", "information overload", [], {}])
def test_values_that_are_not_levels_give_none(value: Any) -> None:
    assert normalize_level(value) is None
