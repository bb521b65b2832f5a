"""Record ids and the wire forms: same line, same id; bad payloads are PoisonMessage."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from common.errors import PoisonMessage
from common.record import Record, decode_batch, encode_batch, record_id, to_document


def test_the_same_line_read_again_gets_the_same_id():
    assert record_id("web-01", "fp", 120, b"GET /") == record_id("web-01", "fp", 120, b"GET /")


@pytest.mark.parametrize("change", [("web-02", "fp", 120, b"GET /"), ("web-01", "fp2", 120, b"GET /"),
                                    ("web-01", "fp", 121, b"GET /"), ("web-01", "fp", 120, b"GET /x")])
def test_host_file_offset_or_content_changes_the_id(change):
    assert record_id(*change) != record_id("web-01", "fp", 120, b"GET /")


def record(**overrides) -> Record:
    base = dict(id="a" * 24, host="h", app="a", source="/var/log/a.log", offset=0, message="hi",
                received_at=1795660000.5)
    return Record(**{**base, **overrides})


def test_batch_round_trips_into_documents():
    body = encode_batch([record(level="error", fields={"k": 1}, ts=1795650000.0),
                         record(id="b" * 24, offset=3, parse_error="no match")])
    docs = [to_document(e) for e in decode_batch(body)]
    assert docs[0]["_id"] == "a" * 24 and docs[0]["level"] == "error" and docs[0]["fields"] == {"k": 1}
    assert docs[0]["ts"] == datetime.fromtimestamp(1795650000.0, UTC)
    assert docs[1]["ts"] == docs[1]["received_at"], "a line without a time gets its ingest time"
    assert docs[1]["parse_error"] == "no match" and "level" not in docs[1]


@pytest.mark.parametrize("body", [b"\xff\xfe garbage", b"[1,2]", b'{"v": 99, "records": []}', b'{"v": 1}'])
def test_unusable_payload_is_poison(body):
    with pytest.raises(PoisonMessage):
        decode_batch(body)


@pytest.mark.parametrize("entry", ["text", {"id": "x"}, {**record().to_wire(), "offset": "7"},
                                   {**record().to_wire(), "level": "loud"}, {**record().to_wire(), "ts": 1e20}])
def test_record_breaking_the_schema_is_poison_with_a_reason(entry):
    with pytest.raises(PoisonMessage) as info:
        to_document(orjson.loads(orjson.dumps(entry)))
    assert info.value.reason
