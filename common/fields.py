"""Bounds on a record's parsed `fields`, so that any parsed line can be encoded and stored.

A JSON line may nest 1,024 levels (orjson's parse limit), but orjson encodes
at most 254, pymongo's encoder about 990, and MongoDB stores 100 documented
(180 measured) before it refuses the document (code 15). Thousands of keys or a
huge structure cost the database and the UI per element. So `fields` keep at
most `MAX_DEPTH` levels, `MAX_KEYS` keys and `MAX_BYTES` of JSON; what lies
beyond is kept as JSON text (a string), never dropped, and the record is
flagged in its `parse_error` as a truncated line is:

- deeper: an object or array below level `MAX_DEPTH` becomes its JSON text
  (Elasticsearch maps 20 levels; Vector's and Filebeat's JSON decoders leave
  deeper layers as strings the same way);
- more keys: counted in document order, the top level first; an object whose
  keys do not fit in what is left of `MAX_KEYS` becomes its JSON text
  (Elasticsearch's total-fields limit is 1,000);
- larger: `fields` over `MAX_BYTES` of JSON (or with more top-level keys
  than `MAX_KEYS`) become `{"_json": "<their JSON text>"}`.

JSON text of a subtree too deep for orjson comes from the stdlib encoder; a
subtree too deep for both cannot be kept (`Unencodable`): the caller stores
the line raw, with `parse_error`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_DEPTH = 20
MAX_KEYS = 1000
MAX_BYTES = 256 * 1024
WHOLE_KEY = "_json"  # where `fields` too large to keep as structure are kept as one string


class Unencodable(ValueError):
    """A value no JSON encoder here can write."""


def json_text(value: Any) -> str:
    """`value` as JSON text; Unencodable if it cannot be written (too deep, an integer over 64 bits...)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: past 254 levels, or a type it does not take
        pass
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (RecursionError, ValueError, TypeError) as exc:
        raise Unencodable(f"{type(exc).__name__}: {exc}") from None


def may_exceed(line: str) -> bool:
    """False when a line cannot give fields over any bound: cheap enough to ask of every line
    (a length and two counts of a character), so only lines that may need it pay for the walk.
    A key costs a line at least two characters and a level one bracket (brackets inside strings
    are counted too, which only makes this say True more often)."""
    return len(line) > 2 * MAX_KEYS or line.count("{") + line.count("[") > MAX_DEPTH


def bound_fields(fields: dict[str, Any], text_size: int | None = None) -> tuple[dict[str, Any], str | None]:
    """`fields` within the bounds, and what was done to them (None if they were within already).

    `text_size`, the length of the text they were parsed from, spares measuring their JSON when
    it is small: parsed values are about as long as their text. Raises Unencodable when a part
    that must become JSON text cannot be written."""
    notes: list[str] = []
    if len(fields) > MAX_KEYS:
        notes.append(f"{len(fields)} top-level keys, over {MAX_KEYS}")
        return _whole(fields, notes)
    walk = _Walk(MAX_KEYS - len(fields))
    bounded = {key: walk.value(value, 1) for key, value in fields.items()}
    if walk.too_deep:
        notes.append(f"parts nested deeper than {MAX_DEPTH} levels kept as JSON text")
    if walk.too_many:
        notes.append(f"objects past {MAX_KEYS} keys in all kept as JSON text")
    if text_size is None or text_size > MAX_BYTES // 2:
        size = len(json_text(bounded).encode())
        if size > MAX_BYTES:
            notes.append(f"{size} bytes of JSON, over {MAX_BYTES}")
            return _whole(fields, notes)
    return bounded, ("fields bounded: " + "; ".join(notes)) if notes else None


def _whole(fields: dict[str, Any], notes: list[str]) -> tuple[dict[str, Any], str]:
    return ({WHOLE_KEY: json_text(fields)},
            f"fields bounded: {'; '.join(notes)}; kept whole as JSON text in fields.{WHOLE_KEY}")


class _Walk:
    """One pass over a `fields` tree: copies what fits, turns what does not into JSON text."""

    __slots__ = ("keys_left", "too_deep", "too_many")

    def __init__(self, keys_left: int):
        self.keys_left = keys_left
        self.too_deep = self.too_many = False

    def value(self, value: Any, depth: int) -> Any:
        """`value` at `depth` (1: a value of `fields` itself); recursion stops at MAX_DEPTH."""
        kind = type(value)
        if kind is dict:
            if depth >= MAX_DEPTH:
                self.too_deep = True
                return json_text(value)
            if len(value) > self.keys_left:
                self.too_many = True
                return json_text(value)
            self.keys_left -= len(value)
            return {key: self.value(item, depth + 1) for key, item in value.items()}
        if kind is list:
            if depth >= MAX_DEPTH:
                self.too_deep = True
                return json_text(value)
            return [self.value(item, depth + 1) for item in value]
        return value
