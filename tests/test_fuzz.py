"""Fuzzing (hypothesis, bounded: about 20 s in all) the two places untrusted text comes in: the
parsers (any line of a log file) and `decode_documents` (any AMQP message body). No exception may
escape; no parser may fail inside (its catch-all would hide it); whatever a parser gives must go
on the wire; whatever the consumer rejects must be parkable in the dead-letter queue."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.config import CONTAINER_FORMATS, FORMATS, InputConfig
from common.errors import PoisonMessage
from common.fields import MAX_DEPTH, MAX_KEYS
from common.record import BatchBuilder, decode_batch, decode_documents, encode_rejected, row
from shipper.container import decode_cri, decode_docker
from shipper.parsers import build_parser


def fuzz(examples: int) -> settings:
    """Bounded by examples, not time (a time bound would make the run depend on the machine's load);
    derandomized, so a failure is the same on every run."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Every line format the config accepts; the container formats unwrap frames first (fuzzed below).
LINE_FORMATS = tuple(fmt for fmt in FORMATS if fmt not in CONTAINER_FORMATS)
PARSERS = {fmt: build_parser(InputConfig(paths=("/x",), app="fuzz", format=fmt,
                                         pattern=r"(?P<ts>\S+) (?P<level>\w+) (?P<msg>.*)" if fmt == "regex" else None),
                             clock=lambda: 1795660000.0) for fmt in LINE_FORMATS}

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=30)


def nested_text(depth: int, kind: str) -> str:
    return ('{"k":' * depth + "1" + "}" * depth) if kind == "object" else ("[" * depth + "1" + "]" * depth)


def lines() -> st.SearchStrategy[str]:
    """Log-line-like text: random text, JSON objects, deep and wide JSON, real line shapes with noise."""
    deep = st.builds(lambda d, kind, key: f'{{"{key}": {nested_text(d, kind)}, "level": "warn"}}',
                     st.integers(0, 1100), st.sampled_from(["object", "list"]), st.text(max_size=5))
    wide = st.builds(lambda n: json.dumps({f"k{i}": [i] for i in range(n)}), st.integers(MAX_KEYS - 5, MAX_KEYS + 5))
    shaped = st.sampled_from([
        '<34>1 2026-11-30T04:00:00Z host app 1 ID [a b="c\\"d"] msg',
        'Nov 30 04:00:00 host app[1]: message',
        '10.0.0.1 - - [30/Nov/2026:04:00:00 +0000] "GET / HTTP/1.1" 500 12 "-" "curl"',
        '2026-11-30T04:00:00.123+01:00 ERROR something',
        'ts=2026-11-30T04:00:00Z level=warn msg="a \\"quoted\\" word" n=12 f=1.5e3 bare',
    ]).flatmap(lambda line: st.builds(lambda cut, noise: line[:cut] + noise, st.integers(0, len(line)),
                                      st.text(max_size=10)))
    return (st.text(max_size=200) | st.builds(lambda v: json.dumps({"v": v}), json_values) | deep | wide | shaped)


@fuzz(1000)
@given(line=lines(), fmt=st.sampled_from(LINE_FORMATS))
def test_any_line_parses_without_an_exception_and_its_record_goes_on_the_wire(line, fmt):
    ts, level, fields, error, message = PARSERS[fmt](line)
    assert not (error or "").startswith(f"{fmt} parser failed"), error
    assert isinstance(fields, dict) and (error is None or isinstance(error, str))
    builder = BatchBuilder()
    builder.group("h", "a", "/x", 1.0).append(row("id", 0, ts, message or line, level, fields, error))
    (entry,) = decode_batch(builder.encode())
    assert entry["message"] == (message or line)
    assert _depth(entry.get("fields", {})) <= MAX_DEPTH


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _record() -> st.SearchStrategy[Any]:
    good = st.tuples(st.text(max_size=5), st.integers(0, 10**6), st.none() | st.floats() | st.integers(),
                     st.text(max_size=10), st.sampled_from([None, "info", "error", "loud"]),
                     st.none() | st.dictionaries(st.text(max_size=4), json_values, max_size=3),
                     st.none() | st.text(max_size=5) | json_values).map(list)
    return good | json_values


payloads = st.one_of(
    st.builds(lambda groups: {"v": 2, "groups": groups}, st.lists(st.fixed_dictionaries(
        {"host": st.text(max_size=4) | json_values, "app": st.text(max_size=4), "source": st.text(max_size=4),
         "received_at": st.floats() | st.integers(-(2**70), 2**70) | json_values,
         "records": st.lists(_record(), max_size=4)}), max_size=3)),
    st.builds(lambda records: {"v": 1, "records": records}, st.lists(
        st.dictionaries(st.sampled_from(["id", "ts", "received_at", "host", "app", "source", "offset",
                                         "message", "level", "fields", "parse_error"]), json_values), max_size=4)),
    json_values,
)


def _body(payload: Any, deep: int) -> bytes:
    """`payload` as a message body; `deep` > 0 nests the fields of one more v2 record that many
    levels, written as text (orjson cannot write past 254, nor integers over 64 bits)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    if deep and isinstance(payload, dict) and payload.get("v") == 2 and b'"records":[' in body:
        record = b'["deep",1,null,"m",null,{"a":' + nested_text(deep, "list").encode() + b"},null]"
        body = body.replace(b'"records":[]', b'"records":[' + record + b"]", 1)
        body = body.replace(b'"records":[', b'"records":[' + record + b",", 1) if record not in body else body
    return body


@fuzz(300)
@given(payload=payloads, deep=st.sampled_from([0, 0, 50, 101, 300, 1000, 1030]))
def test_any_message_body_decodes_to_documents_and_parkable_rejects_or_is_poison(payload, deep):
    try:
        docs, rejected = decode_documents(_body(payload, deep))
    except PoisonMessage as exc:
        assert exc.reason
        return
    for doc in docs:
        assert isinstance(doc["fields"], dict) and _depth(doc["fields"]) <= 100
    assert all(isinstance(reason, str) and reason for _, reason in rejected)
    parked = orjson.loads(encode_rejected(rejected))
    assert len(parked["records"]) == len(rejected)


@fuzz(500)
@given(body=st.binary(max_size=300))
def test_any_bytes_are_a_batch_or_poison(body):
    try:
        decode_documents(body)
    except PoisonMessage:
        pass


@fuzz(500)
@given(raw=st.binary(max_size=200) | st.builds(lambda v: orjson.dumps({"log": v, "stream": "stdout", "time": v}),
                                              st.text(max_size=30))
       | st.builds(lambda cut, noise: b"2026-11-30T10:00:00.123456789Z stdout P part"[:cut] + noise,
                   st.integers(0, 45), st.binary(max_size=10)))
def test_any_container_log_line_decodes_to_content_or_is_kept_whole_with_a_reason(raw):
    for decode in (decode_cri, decode_docker):
        content, partial, frame = decode(raw)
        assert isinstance(content, bytes) and isinstance(partial, bool)
        assert frame.error is None or (content == raw and not partial)
