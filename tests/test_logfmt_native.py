"""shipper._logfmt, the C split of common logfmt lines: built by `make setup`, the same pairs as the
Python reference (`read_pairs`) for every line it takes, None for every line it leaves to it, and
no leak. The records logfmt gives are tested in test_logfmt.py, through whichever reading runs."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper import logfmt
from shipper.logfmt import LogfmtError, read_pairs

Split = Callable[[str], "dict[str, Any] | None"]


@pytest.fixture(scope="module")
def native() -> Split:
    if not logfmt.NATIVE:
        pytest.fail("shipper._logfmt is missing: `make setup` builds it through setup.py, "
                    "with a C compiler and Python's headers")
    from shipper._logfmt import split
    return split


def outcome(read: Callable[[str], dict[str, Any]], line: str) -> list[tuple[str, type, Any]] | str:
    """The pairs with their order and types (1, 1.0 and True are equal in a dict comparison), or the error."""
    try:
        return [(key, type(value), value) for key, value in read(line).items()]
    except LogfmtError:
        return "LogfmtError"


def test_make_setup_built_the_c_reading() -> None:
    assert logfmt.NATIVE, "`make setup` builds shipper._logfmt (setup.py) with a C compiler and Python's headers"


@pytest.mark.parametrize("line", [
    'ts=2026-11-30T10:00:00.25Z level=warn msg="slow query" duration=1.5 rows=42 db=orders',
    'at=info method=GET path=/ host=x.herokuapp.com fwd="1.2.3.4" dyno=web.1 connect=0ms status=200 bytes=2',
    "i=-7 f=0.5 e=1e3 E=2.5E-3 q=\"42\" v=1.2.3 huge=99999999999999999999 inf=1e999 hex=0x1f zero=0 nz=-0",
    "min=-9223372036854775808 max=9223372036854775807 over=9223372036854775808 under=-9223372036854775809",
    "lead=007 leadf=007.5 dot=1. minus=- exp=1e e2=1e+ frac=.5 sign=+1",
    'a=1 a=2 empty="" blank= tab=\tx=1\x1cy=2\xa0z=3',
    'msg="caf\u00e9 \u65e5\u672c \U0001f600" who=\u00e9mile k\u65e5=v',
    'msg="line one\nline two" multi="a\r\nb"',
])
def test_common_lines_are_read_in_c_as_the_reference_reads_them(native: Split, line: str) -> None:
    assert native(line) is not None, "a common line left to the reference: the C reading would not be used"
    assert outcome(native, line) == outcome(read_pairs, line) != "LogfmtError"


@pytest.mark.parametrize("line", [
    "debug a=1",                  # a bare key (true)
    "a=1 tls",
    r'msg="say \"hi\""',          # an escape
    r"path=C:\dir",
    "n=1\u0663",                  # a number with a non-ASCII digit: re's \d reads it, int() too
    'msg="never closed', 'a=b"c', "a=b=c", '="no key"', "=1", 'a="x"y', 'a= "x"', "just words", "", "   ",
])
def test_other_lines_are_left_to_the_reference(native: Split, line: str) -> None:
    assert native(line) is None
    assert outcome(logfmt.split_pairs, line) == outcome(read_pairs, line)


def test_a_non_string_is_a_type_error(native: Split) -> None:
    with pytest.raises(TypeError, match="takes a str"):
        native(b"a=1")  # type: ignore[arg-type]


# Pieces the two readings could disagree on: separators of every kind, number shapes at int64's
# edges, characters of each str width; well-formed lines (which the C reading takes) and lines with
# quotes, escapes, `=`, bare keys and empty keys put anywhere (which it must leave or read alike).
_KEYS = st.sampled_from(["a", "level", "msg", "ts", "k\u00e9", "\u65e5", "x.y", "a-b", "\U0001f600"])
_BARE = st.sampled_from([
    "", "x", "-", "0", "-0", "00", "7", "-12", "1.5", "-1.5e3", "2E+10", "1e999", "1.", ".5", "1e", "1.2.3",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "12345678901234567890", "0x1f", "1\u0663", "\u0661", "caf\u00e9", "\U0001f600", "2026-11-30T10:00:00Z",
]) | st.text(alphabet="ab01.-eE+", max_size=6)
_QUOTED = st.text(alphabet=st.sampled_from("ab =\t\n\u00e9\u65e5\U0001f600"), max_size=8).map(lambda t: f'"{t}"')
_SEPARATORS = st.sampled_from([" ", " ", "  ", "\t", "\n", "\x1c", "\x85", "\xa0", "\u2003", " \t "])
_WELL_FORMED = st.lists(st.tuples(_KEYS, _BARE | _QUOTED, _SEPARATORS), min_size=1, max_size=8).map(
    lambda pairs: "".join(f"{key}={value}{sep}" for key, value, sep in pairs))
_ODD = st.sampled_from(["", "=", '"', "\\", "\x00", "==", ' "', "bare "])
_NOISY = st.lists(st.tuples(_KEYS | _ODD, st.sampled_from(["=", "=", ""]), _BARE | _QUOTED | _ODD,
                            _SEPARATORS | _ODD), max_size=8).map(lambda pairs: "".join(map("".join, pairs)))


@settings(max_examples=3000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_WELL_FORMED | _NOISY | st.text(max_size=60))
def test_every_line_the_c_reading_takes_it_reads_as_the_reference_does(native: Split, line: str) -> None:
    expected = outcome(read_pairs, line)
    if native(line) is not None:
        assert outcome(native, line) == expected
    assert outcome(logfmt.split_pairs, line) == expected


def test_reading_many_lines_keeps_no_memory(native: Split) -> None:
    lines = ['ts=2026-11-30T10:00:00Z level=info msg="done \u65e5" n=42 f=0.5 big=99999999999999999999 s=x',
             "a=1 bare", 'msg="open', "n=1e999"] * 50
    for line in lines:  # warm: interned keys, free lists
        native(line)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(100):
            for line in lines:
                native(line)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 20_000, f"{grown} bytes kept after 20,000 lines: a reference is leaked"
