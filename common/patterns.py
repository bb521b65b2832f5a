"""User-supplied regular expressions, compiled so a bad one cannot pin a CPU.

Two engines, chosen per input with `regex_engine`:

- ``re2`` (default): google-re2 runs in time linear in the line, whatever the
  pattern, so `(a+)+$` on a 100 KiB line costs what any other pattern costs.
  It has no backreferences or look-around; such a pattern is a PatternError.
- ``backtracking``: the `regex` module (Python `re` syntax and more), with a
  time limit on every search; running out of time raises PatternTimeoutError.rror.

Both accept Python-style named groups `(?P<name>...)` and return an object with
`.search(text)`, `.groupindex` and `.pattern`; a match has `.groupdict()`.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import re2
import regex

ENGINES = ("re2", "backtracking")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class PatternError(ValueError):
    """A pattern the chosen engine cannot compile; the message says what to do."""


class PatternTimeoutError(TimeoutError):
    """A backtracking search ran past its time limit on one line."""


class Match(Protocol):
    def groupdict(self) -> dict[str, Any]: ...


class Pattern(Protocol):
    pattern: str
    groupindex: dict[str, int]

    def search(self, text: str) -> Match | None: ...


def compile_pattern(pattern: str, engine: str = "re2", timeout: float = 0.1) -> Pattern:
    """Compile `pattern` for `engine`; PatternError if it cannot be used.

    `timeout` (seconds per search) applies to the backtracking engine only.
    """
    if engine == "re2":
        return _Re2Pattern(pattern)
    if engine == "backtracking":
        return _BacktrackingPattern(pattern, timeout)
    raise PatternError(f"unknown regex engine {engine!r}, expected one of {', '.join(ENGINES)}")


def _python_to_re2(pattern: str) -> str:
    # Python's end-of-text `\Z` is spelled `\z` in RE2 (which rejects `\Z`).
    # Escapes are consumed in pairs, so a literal backslash before Z (`\\Z`) stays.
    return _ESCAPE.sub(lambda m: r"\z" if m.group(1) == "Z" else m.group(0), pattern)


class _Re2Match:
    __slots__ = ("_values",)

    def __init__(self, values: dict[str, str | None]):
        self._values = values

    def groupdict(self) -> dict[str, str | None]:
        return dict(self._values)

    def group(self, name: str) -> str | None:
        return self._values[name]


class _Re2Pattern:
    """RE2 over the UTF-8 bytes of the line, captured groups decoded back to str."""

    def __init__(self, pattern: str, fast: bool = True):
        options = re2.Options()
        options.log_errors = False  # the PatternError below says it; no stray stderr line
        try:
            compiled = re2.compile(_python_to_re2(pattern), options)
        except re2.error as exc:
            reason = exc.args[0] if exc.args else "invalid pattern"
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise PatternError(
                f"RE2 cannot compile {pattern!r} ({reason}); RE2 runs in linear time and has no "
                "backreferences or look-around. Rewrite the pattern, or set "
                "`regex_engine: backtracking` on this input to use a backtracking engine "
                "with a per-line time limit (`regex_timeout`)") from None
        self.pattern = pattern
        self._compiled = compiled
        # re2 rebuilds groupindex on every access: build it once, in group order.
        self.groupindex = dict(sorted(compiled.groupindex.items(), key=lambda item: item[1]))
        self._groups = tuple(self.groupindex.items())
        # re2's public str API maps byte offsets back to characters in Python on
        # every match, which doubles the cost; the underlying RE2 object's Match()
        # gives byte spans directly. Use the public API if that internal changes.
        regexp = getattr(compiled, "_regexp", None)
        self._unanchored = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
        self._spans = getattr(regexp, "Match", None) if fast and self._unanchored is not None else None

    def search(self, text: str) -> _Re2Match | None:
        # surrogatepass: a str with lone surrogates still encodes (RE2 sees invalid
        # UTF-8), and "replace" turns them into U+FFFD on the way back.
        data = text.encode("utf-8", "surrogatepass")
        if self._spans is not None:
            spans = self._spans(self._unanchored, data, 0, len(data))
            if spans[0][0] < 0:
                return None
        else:
            match = self._compiled.search(data)
            if match is None:
                return None
            spans = [match.span(index) for index in range(match.re.groups + 1)]
        values = {}
        for name, index in self._groups:
            start, end = spans[index]
            values[name] = None if start < 0 else data[start:end].decode("utf-8", "replace")
        return _Re2Match(values)


class _BacktrackingPattern:
    """The `regex` module with a time limit on each search."""

    def __init__(self, pattern: str, timeout: float):
        try:
            self._compiled = regex.compile(pattern)
        except regex.error as exc:
            raise PatternError(f"cannot compile {pattern!r}: {exc}") from None
        self.pattern = pattern
        self.groupindex = dict(self._compiled.groupindex)
        self.timeout = timeout

    def search(self, text: str) -> Any:
        try:
            return self._compiled.search(text, timeout=self.timeout)
        except TimeoutError:
            raise PatternTimeoutError(
                f"pattern ran past regex_timeout ({self.timeout:g} s) on this line "
                "(backtracking engine)") from None
