"""Lines of one file in, records out: the one place a line becomes a record.

The shipper and the importer (shipper.backfill) both make their records here,
so a line gets the same id and the same fields whichever of them read it: a
hash of (host, fingerprint of the file's first line, byte offset, raw bytes),
and the parse of its decoded text, with the container runtime's frame (time,
stream, partial-line error) laid over it and a truncated line flagged.

`record_maker` returns a closure rather than an object: it runs once per line
on the shipper's hot path, where locals are cheaper than attribute look-ups
(see bench/README.md for how the shipper's rate is measured).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.config import InputConfig
from common.record import IdHasher, row
from shipper.container import ContainerFrames
from shipper.parsers import Parser
from shipper.tailer import Line

Row = tuple[Any, ...]  # common.record.ROW_FIELDS
PARSE_ERROR = 6        # the index of `parse_error` in a row (common.record.ROW_FIELDS)
RECORD_OVERHEAD = 160  # approximate JSON bytes per record besides the message: what batch sizes count


def truncated_error(max_line_bytes: int, error: str | None) -> str:
    """The `parse_error` of a line cut at `max_line_bytes`, keeping the parser's own error after it."""
    note = f"line longer than max_line_bytes ({max_line_bytes}); truncated"
    return f"{note}; {error}" if error else note


def covered_bytes(line: Line) -> int:
    """The bytes of its file a truncated line's record covers: the part it kept (the rest of the
    line is a gap in the file's coverage, caused by max_line_bytes). Container lines keep
    their content without the runtime's framing, so theirs cover their whole span."""
    return len(line.raw) if line.frame is None else line.end - line.offset


def record_app(input_config: InputConfig, frames: ContainerFrames | None) -> str:
    """The `app` of a file's records: the input's, or the container's for container logs."""
    return frames.app if frames is not None else input_config.app


def record_maker(host: str, fingerprint: str, input_config: InputConfig, parse: Parser,
                 frames: ContainerFrames | None) -> Callable[[Line], Row]:
    """The function turning one line of this file into its record row."""
    record_id = IdHasher(host, fingerprint)
    encoding, max_line_bytes = input_config.encoding, input_config.max_line_bytes

    def make(line: Line) -> Row:
        raw, offset = line.raw, line.offset
        message = raw.decode(encoding, "replace")
        ts, level, fields, error, text = parse(message)
        if text is not None:
            message = text
        if frames is not None:
            frame = line.frame
            if frame is not None:
                ts = frame.ts if frame.ts is not None else ts
                error = frame.error or error
            fields = frames.fields(frame, fields)
        if line.truncated:
            error = truncated_error(max_line_bytes, error)
        return row(record_id(offset, raw), offset, ts, message, level, fields, error)

    return make
