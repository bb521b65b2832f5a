"""opslog records and documents made from a generated file, as the shipper and consumer would.

Lines are parsed with opslog's own parser for their format and wrapped in
`tests.records.Record`s (plain record objects: the product never needs them); `documents()`
turns them into `logs` documents with
`common.record.to_document`, the consumer's own conversion.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from common.config import InputConfig
from common.record import to_document
from shipper.parsers import Parsed, build_parser
from tests.records import Record, encode_batch, record_id

BENCH_HOST = "bench-01"


class ParsedLine(NamedTuple):
    offset: int
    raw: bytes       # without its newline
    message: str
    parsed: Parsed


def parsed_lines(path: str, fmt: str, count: int) -> list[ParsedLine]:
    """The first `count` lines of `path`, parsed as an input of format `fmt` would parse them."""
    parse = build_parser(InputConfig(paths=(path,), app="bench", format=fmt))
    out: list[ParsedLine] = []
    offset = 0
    with open(path, "rb") as fh:
        for raw in fh:
            if len(out) >= count:
                break
            line = raw.rstrip(b"\n")
            message = line.decode("utf-8", "replace")
            out.append(ParsedLine(offset, line, message, parse(message)))
            offset += len(raw)
    return out


def record(line: ParsedLine, host: str, app: str, source: str, received_at: float,
           ts: float | None = None) -> Record:
    p = line.parsed
    return Record(record_id(host, f"bench:{source}", line.offset, line.raw), host, app, source, line.offset,
                  line.message, received_at, p.ts if ts is None else ts, p.level, p.fields, p.error)


def records(path: str, fmt: str, count: int, host: str = BENCH_HOST, app: str = "bench") -> list[Record]:
    """The first `count` lines of `path` as the records a shipper on `host` would send."""
    now = time.time()
    return [record(line, host, app, path, now) for line in parsed_lines(path, fmt, count)]


def batches(recs: list[Record], size: int) -> Iterator[bytes]:
    """AMQP message bodies of `size` records each, as the shipper publishes them."""
    for start in range(0, len(recs), size):
        yield encode_batch(recs[start:start + size])


def documents(recs: list[Record]) -> list[dict[str, Any]]:
    return [to_document(r.to_wire()) for r in recs]
