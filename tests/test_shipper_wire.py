"""The shipper's hot path (per-file id hasher, entries without Records) gives exactly the ids and bytes of Records."""

from __future__ import annotations

import pytest

from common.record import IdHasher, Record, encode_batch, encode_entries, record_id, wire_entry


@pytest.mark.parametrize("raw", [b"", b"plain line", "caf\u00e9 \u2603".encode(), b"\xff\xfe\x00 bytes"])
@pytest.mark.parametrize("offset", [0, 7, 10**12])
def test_ids_from_the_per_file_hasher_equal_record_id(raw, offset):
    assert IdHasher("web-01", "0123456789abcdef")(offset, raw) == record_id("web-01", "0123456789abcdef", offset, raw)


def test_wire_entries_encode_to_the_same_bytes_as_encode_batch_of_records():
    records = [
        Record("a", "h", "app", "/var/log/a.log", 0, "no time, no level", 1700000000.5),
        Record("b", "h", "app", "/var/log/a.log", 18, "full", 1700000000.5, 1699999999.25, "error",
               {"status": "500", "n": 3}, None),
        Record("c", "h", "app", "/var/log/a.log", 40, "bad", 1700000000.5, None, None, {}, "line does not match"),
    ]
    wire = [wire_entry(r.id, r.ts, r.received_at, r.host, r.app, r.source, r.offset, r.message, r.level,
                       r.fields, r.parse_error) for r in records]
    assert encode_entries(wire) == encode_batch(records)
