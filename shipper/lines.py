"""What the tailer hands on: a file line with its offsets (`Line`), and, for container
logs, the runtime's framing taken off it (`Frame`, filled in by shipper.container).
A leaf module, so the tailer and the joiners that read its lines need not import each other."""

from __future__ import annotations

from typing import NamedTuple


class Frame(NamedTuple):
    ts: float | None     # the runtime's time for the line (its first part), epoch seconds UTC
    stream: str | None   # stdout | stderr
    error: str | None    # the file line is not a frame of this format: kept whole


class Line(NamedTuple):
    offset: int      # byte offset of the line's first byte
    end: int         # byte offset just past its newline: where reading resumes after it
    raw: bytes       # without the line ending
    truncated: bool  # longer than max_line_bytes: `raw` holds its first max_line_bytes
    frame: Frame | None = None  # container logs: the runtime's framing, taken off `raw` (shipper.container)
