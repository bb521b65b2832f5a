"""The bounds on parsed fields (common.fields), and the json parser keeping to them."""

from __future__ import annotations

import json

from common.config import InputConfig
from common.fields import MAX_BYTES, MAX_DEPTH, MAX_KEYS, WHOLE_KEY, bound_fields, may_exceed
from shipper.parsers import build_parser


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def test_fields_within_the_bounds_are_kept_as_they_are_and_ordinary_lines_skip_the_walk():
    fields = {"user": {"id": 7, "roles": ["a", "b"]}, "msg": "x" * 1000}
    assert bound_fields(fields) == (fields, None)
    assert not may_exceed(json.dumps(fields))


def test_a_part_deeper_than_the_limit_becomes_its_json_text_and_the_shallow_part_stays():
    fields, note = bound_fields({"a": json.loads(nested(30)), "b": {"c": 1}})
    value = fields["a"]
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert json.loads(value) == json.loads(nested(30 - MAX_DEPTH + 1))
    assert fields["b"] == {"c": 1}
    assert note == f"fields bounded: parts nested deeper than {MAX_DEPTH} levels kept as JSON text"


def test_an_object_past_the_key_budget_becomes_its_json_text_and_too_many_top_level_keys_keep_all_whole():
    inner = {f"k{i}": i for i in range(600)}
    fields, note = bound_fields({"first": inner, "second": dict(inner), "third": 3})
    assert fields["first"] == inner and json.loads(fields["second"]) == inner and fields["third"] == 3
    assert f"past {MAX_KEYS} keys" in note

    wide = {f"k{i}": i for i in range(MAX_KEYS + 1)}
    fields, note = bound_fields(wide)
    assert list(fields) == [WHOLE_KEY] and json.loads(fields[WHOLE_KEY]) == wide
    assert f"{MAX_KEYS + 1} top-level keys" in note


def test_fields_over_the_size_limit_are_kept_whole_as_one_string():
    big = {"stack": "x" * MAX_BYTES, "n": 1}
    fields, note = bound_fields(big, text_size=MAX_BYTES + 20)
    assert json.loads(fields[WHOLE_KEY]) == big and "bytes of JSON" in note


def test_the_json_parser_bounds_its_fields_and_keeps_a_line_too_deep_for_any_encoder_raw():
    parse = build_parser(InputConfig(paths=("/x",), app="a", format="json"))
    result = parse('{"level": "warn", "a": ' + nested(300) + "}")
    assert result.level == "warning" and result.error.startswith("fields bounded:")
    result = parse('{"level": "warn", "a": ' + nested(1020) + "}")  # orjson reads 1,024 levels, writes 254
    assert result.level == "warning" and result.fields == {}
    assert result.error.startswith("fields cannot be stored") and "kept raw" in result.error
