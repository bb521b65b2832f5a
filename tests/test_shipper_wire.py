"""The shipper's hot path (per-file id hasher, v2 rows in a BatchBuilder, no Records) gives exactly
the ids of `record_id` and the bytes of `encode_batch`, and the documents a v1 payload gave."""

from __future__ import annotations

import orjson
import pytest

from common.config import InputConfig
from common.record import BatchBuilder, IdHasher, decode_documents, row, to_document
from shipper.parsers import build_parser
from tests.records import Record, encode_batch, record_id


@pytest.mark.parametrize("raw", [b"", b"plain line", "caf\u00e9 \u2603".encode(), b"\xff\xfe\x00 bytes"])
@pytest.mark.parametrize("offset", [0, 7, 10**12])
def test_ids_from_the_per_file_hasher_equal_record_id(raw, offset):
    assert IdHasher("web-01", "0123456789abcdef")(offset, raw) == record_id("web-01", "0123456789abcdef", offset, raw)


LINES = [
    b'203.0.113.9 - - [26/Nov/2025:00:00:00 +0000] "GET /a HTTP/1.1" 500 12 "-" "curl/8.5"',
    b'198.51.100.4 - bob [26/Nov/2025:00:00:01 +0000] "POST /b?x=\\"1\\" HTTP/2.0" 200 0 "https://e/" "ua"',
    b"not an access log line at all",
    "caf\u00e9 \xff".encode("latin-1"),
]


def shipped(host: str, path: str, received_at: float) -> tuple[BatchBuilder, list[Record]]:
    """LINES as the shipper's hot path adds them, and the same lines as Records."""
    parse = build_parser(InputConfig(paths=(path,), app="nginx", format="nginx_combined"))
    hasher, builder, records = IdHasher(host, "fp"), BatchBuilder(), []
    rows = builder.group(host, "nginx", path, received_at)
    offset = 0
    for raw in LINES:
        message = raw.decode("utf-8", "replace")
        ts, level, fields, error, _ = parse(message)
        rows.append(row(hasher(offset, raw), offset, ts, message, level, fields, error))
        records.append(Record(record_id(host, "fp", offset, raw), host, "nginx", path, offset, message, received_at,
                              ts, level, fields, error))
        offset += len(raw) + 1
    return builder, records


def test_the_hot_path_encodes_to_the_bytes_of_encode_batch():
    builder, records = shipped("web-01", "/var/log/nginx/access.log", 1795660000.25)
    assert len(builder) == len(LINES)
    assert builder.encode() == encode_batch(records)


def test_what_the_shipper_sends_gives_the_documents_v1_gave():
    builder, records = shipped("web-01", "/var/log/nginx/access.log", 1795660000.25)
    docs, rejected = decode_documents(builder.encode())
    assert rejected == []
    assert docs == [to_document(r.to_wire()) for r in records]
    assert docs == decode_documents(encode_batch(records, version=1))[0]
    assert docs[2]["parse_error"] and docs[2]["ts"] == docs[2]["received_at"], "unparsed line: stored, ingest time"


def test_a_batch_counts_records_across_groups_and_sends_no_empty_group():
    builder = BatchBuilder()
    builder.group("h", "app", "/a.log", 1.0).extend(row(f"{i:024x}", i, None, "m", None, {}, None) for i in range(3))
    assert len(builder) == 3
    builder.group("h", "app", "/b.log", 2.0).append(row("f" * 24, 0, None, "m", None, {}, None))
    builder.group("h", "app", "/b.log", 2.0)  # opened after the batch filled up, left empty
    assert len(builder) == 4
    groups = orjson.loads(builder.encode())["groups"]
    assert [(g["source"], len(g["records"])) for g in groups] == [("/a.log", 3), ("/b.log", 1)]
