"""Joining multiline events (stack traces) by a start pattern.

A line matching `start_pattern` begins an event; the lines after it that do
not match belong to it. An event is complete when the next one starts, when it
reaches `max_lines`, or when no line arrived for `flush_timeout`. The event's
offset is its first line's, its end is its last line's end: the file's
confirmed offset never passes a line of an event still being assembled.

An event holds at most `max_line_bytes` in memory: lines past that only move
its end, and the event is flagged truncated, like an over-long line.
"""

from __future__ import annotations

import time

from common.config import InputConfig
from common.patterns import compile_pattern
from shipper.tailer import Line


class Multiline:
    def __init__(self, cfg: InputConfig):
        assert cfg.multiline is not None
        self.start = compile_pattern(cfg.multiline.start_pattern, cfg.regex_engine)
        self.flush_timeout = cfg.multiline.flush_timeout
        self.max_lines = cfg.multiline.max_lines
        self.max_bytes = cfg.max_line_bytes
        self.encoding = cfg.encoding
        self.lines: list[Line] = []
        self.count = 0        # lines in the event, kept or not
        self.held = 0         # bytes of the kept lines
        self.overflow: Line | None = None  # the last line past max_line_bytes, not kept
        self.updated = 0.0

    def reset(self) -> None:
        self.lines, self.count, self.held, self.overflow = [], 0, 0, None

    def feed(self, lines: list[Line]) -> list[Line]:
        """Completed events among what `lines` adds."""
        events = []
        for line in lines:
            starts = self._starts(line)
            if self.lines and (starts or self.count >= self.max_lines):
                events.append(self._join())
            self.count += 1
            if self.held < self.max_bytes:
                self.lines.append(line)
                self.held += len(line.raw) + 1
            else:
                self.overflow = line
        if lines:
            self.updated = time.monotonic()
        return events

    def expired(self) -> list[Line]:
        """The pending event, if nothing was added to it for flush_timeout."""
        if self.lines and time.monotonic() - self.updated >= self.flush_timeout:
            return [self._join()]
        return []

    def flush(self) -> list[Line]:
        return [self._join()] if self.lines else []

    def _starts(self, line: Line) -> bool:
        try:
            return self.start.search(line.raw.decode(self.encoding, "replace")) is not None
        except Exception:  # a backtracking pattern that timed out: treat the line as a new event
            return True

    def _join(self) -> Line:
        lines, overflow = self.lines, self.overflow
        self.reset()
        raw = b"\n".join(line.raw for line in lines)
        truncated = overflow is not None or any(line.truncated for line in lines) or len(raw) > self.max_bytes
        end = overflow.end if overflow is not None else lines[-1].end
        return Line(lines[0].offset, end, raw[: self.max_bytes], truncated, lines[0].frame)
