"""User patterns: linear time by default, a time limit when backtracking is asked for."""

from __future__ import annotations

import pytest

from common.config import parse_config
from common.errors import ConfigError
from common.patterns import PatternError, PatternTimeoutError, _Re2Pattern, compile_pattern

ENGINES = ("re2", "backtracking")
CATASTROPHIC = r"(?P<run>a+)+$"
EVIL_LINE = "a" * 100 * 1024 + "b"


@pytest.mark.parametrize("engine", ENGINES)
def test_python_style_named_groups_become_groupdict_on_both_engines(engine: str) -> None:
    pattern = compile_pattern(r"(?P<user>\w+)@(?P<host>[\w.-]+)(?: port (?P<port>\d+))?", engine)

    match = pattern.search("login by alice@db-1.example from ...")

    assert pattern.groupindex == {"user": 1, "host": 2, "port": 3}
    assert pattern.pattern.startswith("(?P<user>")
    assert match is not None
    assert match.groupdict() == {"user": "alice", "host": "db-1.example", "port": None}


@pytest.mark.parametrize("engine", ENGINES)
def test_non_matching_text_gives_none(engine: str) -> None:
    assert compile_pattern(r"^(?P<n>\d+)$", engine).search("no digits here") is None


@pytest.mark.parametrize("engine", ENGINES)
def test_groups_after_non_ascii_text_are_cut_at_the_right_characters(engine: str) -> None:
    match = compile_pattern(r"(?P<word>é\w*) (?P<rest>.+)", engine).search("Grüße: élan vital ✓")

    assert match is not None
    assert match.groupdict() == {"word": "élan", "rest": "vital ✓"}


@pytest.mark.timeout(10)
def test_re2_runs_nested_quantifier_over_100_kib_line_without_hanging() -> None:
    # (a+)+$ against a long run of 'a' ending in 'b' is the classic exponential case
    # for a backtracking engine; RE2 answers "no match" in linear time.
    assert compile_pattern(CATASTROPHIC, "re2").search(EVIL_LINE) is None


@pytest.mark.timeout(10)
def test_backtracking_engine_stops_a_catastrophic_search_at_its_time_limit() -> None:
    pattern = compile_pattern(CATASTROPHIC, "backtracking", timeout=0.05)

    with pytest.raises(PatternTimeoutError, match="regex_timeout"):
        pattern.search(EVIL_LINE)


def test_backtracking_engine_accepts_backreferences() -> None:
    match = compile_pattern(r"(?P<word>\w+) (?P=word)", "backtracking").search("it is is here")

    assert match is not None and match.groupdict() == {"word": "is"}


@pytest.mark.parametrize("pattern", [r"(?P<w>\w+) \1", r"(?P<w>\w+) (?P=w)", r"(?<=user=)(?P<u>\w+)",
                                     r"(?P<n>\d+)(?!px)"])
def test_pattern_re2_cannot_compile_is_a_pattern_error_that_suggests_backtracking(pattern: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern, "re2")

    message = str(caught.value)
    assert "RE2 cannot compile" in message
    assert "regex_engine: backtracking" in message
    compile_pattern(pattern, "backtracking")  # the suggestion works


def test_re2_compile_failure_writes_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PatternError):
        compile_pattern(r"(a)\1", "re2")

    assert capfd.readouterr().err == ""


def test_invalid_syntax_is_a_pattern_error_on_the_backtracking_engine_too() -> None:
    with pytest.raises(PatternError, match="cannot compile"):
        compile_pattern(r"(?P<open>unclosed", "backtracking")


def test_unknown_engine_is_a_pattern_error() -> None:
    with pytest.raises(PatternError, match="unknown regex engine"):
        compile_pattern(r"x", "pcre")


def test_python_end_of_text_anchor_works_on_re2() -> None:
    pattern = compile_pattern(r"(?P<tail>\w+)\Z", "re2")

    assert pattern.search("ends with word") is not None
    assert pattern.search("ends with dot.") is None
    assert compile_pattern(r"(?P<z>\\Z)", "re2").search(r"a \Z").groupdict() == {"z": "\\Z"}


@pytest.mark.parametrize("engine", ENGINES)
def test_nul_bytes_replacement_chars_and_lone_surrogates_do_not_break_a_search(engine: str) -> None:
    pattern = compile_pattern(r"(?P<key>\w+)=(?P<value>\S+)", engine)

    assert pattern.search("a\x00b key=\ufffd\x00v").groupdict() == {"key": "key", "value": "\ufffd\x00v"}
    match = pattern.search("x=\udcff")
    assert match is not None and match.groupdict()["key"] == "x"


def test_re2_public_api_fallback_finds_the_same_groups() -> None:
    text = "2026-11-26 ERROR é db down"
    source = r"(?P<day>\S+) (?P<level>[A-Z]+)(?: (?P<none>zzz))? (?P<msg>.*)"
    fast, fallback = _Re2Pattern(source), _Re2Pattern(source, fast=False)

    assert fallback.search(text).groupdict() == fast.search(text).groupdict()
    assert fallback.search("nothing") is None


def test_config_validation_names_the_input_whose_pattern_re2_cannot_compile() -> None:
    data = {"shipper": {"inputs": [
        {"paths": ["/var/log/a.log"], "app": "a", "format": "regex", "pattern": r"(?P<w>\w+) \1"},
        {"paths": ["/var/log/b.log"], "app": "b", "format": "regex", "pattern": r"(?P<w>\w+) \1",
         "regex_engine": "backtracking"},
    ]}}

    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("shipper.inputs[0].pattern: RE2 cannot compile")
