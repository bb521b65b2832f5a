"""logfmt: pairs into fields (numbers as numbers), level/time/msg into the record, bad lines kept raw."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from common.config import InputConfig
from shipper import logfmt
from shipper.logfmt import LogfmtError, split_pairs
from shipper.parsers import Parsed, build_parser


def parse(line: str, **options: str) -> Parsed:
    return build_parser(InputConfig(paths=("x",), app="a", format="logfmt", **options))(line)


def test_a_go_kit_line_gives_its_time_level_message_and_typed_fields() -> None:
    line = 'ts=2026-11-30T10:00:00.25Z level=warn msg="slow query" duration=1.5 rows=42 db=orders'

    assert parse(line) == Parsed(datetime(2026, 11, 30, 10, 0, 0, 250000, UTC).timestamp(), "warning",
                                 {"duration": 1.5, "rows": 42, "db": "orders"}, None, "slow query")


@pytest.mark.parametrize(("line", "level", "ts"), [
    ("lvl=error t=1796032800 msg=x", "error", 1796032800.0),
    ("severity=CRITICAL time=2026-11-30T10:00:00Z msg=x", "critical", 1796032800.0),
    ("level=debug time=1796032800123 msg=x", "debug", 1796032800.123),
])
def test_level_time_and_message_come_from_any_of_their_usual_keys(line: str, level: str, ts: float) -> None:
    result = parse(line)
    assert (result.level, result.ts, result.message, result.fields) == (level, pytest.approx(ts), "x", {})


def test_a_time_in_the_input_s_timezone_and_a_level_or_time_that_is_not_one_stays_a_field() -> None:
    local = parse("time=2026-11-30T11:00:00 msg=x", timezone="Europe/Paris")
    assert local.ts == datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC).timestamp()
    odd = parse("time=soon level=loud msg=x")
    assert (odd.ts, odd.level, odd.fields) == (None, None, {"time": "soon", "level": "loud"})


def test_quoted_values_keep_spaces_and_equals_and_go_escapes_are_undone() -> None:
    assert split_pairs(r'q="a b=c" e="say \"hi\"\n\tok \\ \u00e9" empty="" blank=') == {
        "q": "a b=c", "e": 'say "hi"\n\tok \\ \u00e9', "empty": "", "blank": ""}


def test_numbers_become_numbers_only_when_bare_and_representable() -> None:
    assert split_pairs('i=-7 f=0.5 e=1e3 q="42" v=1.2.3 huge=99999999999999999999 inf=1e999 id=0x1f') == {
        "i": -7, "f": 0.5, "e": 1000.0, "q": "42", "v": "1.2.3", "huge": "99999999999999999999",
        "inf": "1e999", "id": "0x1f"}


def test_a_bare_key_is_true_and_a_repeated_key_keeps_its_last_value() -> None:
    assert split_pairs("debug a=1 a=2  tls\t") == {"debug": True, "a": 2, "tls": True}


@pytest.mark.parametrize("line", [
    'msg="never closed',          # unclosed quote
    'a=b"c',                      # quote inside a bare value
    "a=b=c",                      # `=` inside a bare value
    '="no key"',                  # no key
    'a="x"y',                     # text glued to a quoted value
    "just some words",            # no pair at all: a plain line, not logfmt
    "",
])
def test_a_malformed_line_is_stored_raw_with_parse_error(line: str) -> None:
    with pytest.raises(LogfmtError):
        split_pairs(line)
    result = parse(line)
    assert (result.ts, result.level, result.fields, result.message) == (None, None, {}, None)
    assert result.error


def test_a_message_that_is_a_number_or_bare_is_still_text() -> None:
    assert parse("msg=42 a=1").message == "42"
    assert parse("msg a=1").message == ""


def test_a_long_line_of_unclosed_quotes_is_refused_in_linear_time() -> None:
    # the pattern must not backtrack over every way to split the line: this returns at once
    result = parse('a="' + '\\"x' * 200_000)
    assert result.error


@pytest.mark.parametrize("line", [
    'ts=2026-11-30T10:00:00Z level=info msg="a b" path="/x?a=1&b=2" n=3 ok',
    'a="" b= c  d="x y"', 'k="v"w', '"x"=1', 'a=1 "', 'a= "x"', 'a="x" "y"', "a=1 b==2", 'a=1\tb="tab\there"',
])
def test_lines_without_backslashes_split_the_same_on_the_fast_path_as_through_the_full_pattern(line: str) -> None:
    def outcome(split: Callable[[str], dict[str, Any]]) -> dict[str, Any] | str:
        try:
            return split(line)
        except LogfmtError:
            return "refused"
    assert outcome(logfmt._split_quotes) == outcome(logfmt._split_escaped)


def test_a_bare_value_that_only_starts_like_a_number_stays_text_and_int64_bounds_hold() -> None:
    assert split_pairs("t=2026-11-30T10:00:00Z id=1b53a87d05 z=007 f=00.5 neg=-0 dash=- half=5. frac=.5") == {
        "t": "2026-11-30T10:00:00Z", "id": "1b53a87d05", "z": "007", "f": 0.5, "neg": 0, "dash": "-",
        "half": "5.", "frac": ".5"}
    assert split_pairs("lo=-9223372036854775808 hi=9223372036854775807 over=9223372036854775808") == {
        "lo": -(1 << 63), "hi": (1 << 63) - 1, "over": "9223372036854775808"}
