"""The wire form of records: record ids, v2 payloads built, payloads of either version read
back as v1 entries, and dead-letter bodies (common.record describes both versions)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from common.errors import PoisonMessage
from common.record.schema import GROUP_FIELDS, PAYLOAD_VERSION, ROW_FIELDS, ROW_LENGTH


class IdHasher:
    """Record ids for the lines of one file: the (host, fingerprint) prefix is hashed once,
    which the shipper's hot path needs (formatting the whole key per line costs as much as parsing)."""

    __slots__ = ("_copy",)

    def __init__(self, host: str, fingerprint: str):
        self._copy = hashlib.blake2b(f"{host}\0{fingerprint}\0".encode(), digest_size=12).copy

    def __call__(self, offset: int, raw: bytes) -> str:
        digest = self._copy()
        digest.update(b"%d\0" % offset)
        digest.update(raw)
        return digest.hexdigest()



def row(record_id: str, offset: int, ts: float | None, message: str, level: str | None,
        fields: dict[str, Any] | None, parse_error: str | None) -> tuple[Any, ...]:
    """One record of a v2 group (orjson writes the tuple as an array)."""
    return (record_id, offset, ts, message, level, fields, parse_error)


class BatchBuilder:
    """A v2 payload being filled. The shipper's hot path appends `row(...)`s to the list that
    `group()` returns: no dict per record, and nothing a group shares is repeated."""

    __slots__ = ("_groups", "_before")

    def __init__(self) -> None:
        self._groups: list[dict[str, Any]] = []
        self._before = 0  # records in the groups before the last one

    def __len__(self) -> int:
        return self._before + len(self._groups[-1]["records"]) if self._groups else 0

    def group(self, host: str, app: str, source: str, received_at: float) -> list[tuple[Any, ...]]:
        """The record list of a new group: append `row(...)`s to it."""
        self._before = len(self)
        rows: list[tuple[Any, ...]] = []
        self._groups.append({"host": host, "app": app, "source": source, "received_at": received_at,
                             "records": rows})
        return rows

    def file_group(self, host: str, app: str, source: str, received_at: float,
                   file: str) -> tuple[list[tuple[Any, ...]], list[int]]:
        """A new group of one file's records, as `group`, plus what coverage needs: the file's
        identity (`file`, the same across renames and copies) and a list to append each record's
        byte length to, in step with its rows (`lengths`: what of the file the record covers)."""
        self._before = len(self)
        rows: list[tuple[Any, ...]] = []
        lengths: list[int] = []
        self._groups.append({"host": host, "app": app, "source": source, "received_at": received_at,
                             "file": file, "lengths": lengths, "records": rows})
        return rows, lengths

    def encode(self) -> bytes:
        """The AMQP message body. A group left empty (its batch filled up just before) is not sent.

        A record whose fields orjson cannot write (nested past 254 levels, an integer over 64
        bits) must not cost the batch its other records: it goes raw, flagged in `parse_error`."""
        groups = [g for g in self._groups if g["records"]]
        try:
            return orjson.dumps({"v": PAYLOAD_VERSION, "groups": groups})
        except orjson.JSONEncodeError:
            for group in groups:
                group["records"] = [_encodable(rec) for rec in group["records"]]
            return orjson.dumps({"v": PAYLOAD_VERSION, "groups": groups})


def _encodable(rec: tuple[Any, ...]) -> tuple[Any, ...]:
    """A v2 row orjson can write: itself, or without its fields and with the reason in `parse_error`."""
    try:
        orjson.dumps(rec)
        return rec
    except orjson.JSONEncodeError as exc:
        record_id, offset, ts, message, level, _, error = rec
        reason = f"fields cannot be encoded ({exc}); the line is kept raw"
        return row(record_id, offset, ts, message, level, None, f"{error}; {reason}" if error else reason)



def encode_rejected(rejected: Sequence[tuple[Any, str]]) -> bytes:
    """The dead-letter body for (v1 entry, reason) pairs: a v1 payload plus the `reasons`.

    An entry whose fields orjson cannot write (a hostile payload nested past 254 levels) is
    parked without them, with why in its `parse_error`: replayed, its line is stored raw."""
    reasons = [reason for _, reason in rejected]
    try:
        return orjson.dumps({"v": 1, "records": [entry for entry, _ in rejected], "reasons": reasons}, default=str)
    except orjson.JSONEncodeError:
        return orjson.dumps({"v": 1, "records": [_parkable(entry) for entry, _ in rejected], "reasons": reasons},
                            default=str)


def _parkable(entry: Any) -> Any:
    """A v1 entry orjson can write: itself, or without its fields, or a note where it was."""
    try:
        orjson.dumps(entry, default=str)
        return entry
    except orjson.JSONEncodeError as exc:
        why = exc
    if isinstance(entry, dict) and "fields" in entry:
        error, reason = entry.get("parse_error"), f"fields cannot be encoded ({why}); the line is kept raw"
        slim = {**entry, "fields": None, "parse_error": f"{error}; {reason}" if isinstance(error, str) else reason}
        try:
            orjson.dumps(slim, default=str)
            return slim
        except orjson.JSONEncodeError:
            pass
    return {"unencodable": f"the record cannot be written as JSON: {why}"}


def load_payload(body: bytes) -> dict[str, Any]:
    """The payload object, its version checked; PoisonMessage if it is none of ours."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict) or type(payload.get("v")) is not int or payload["v"] not in (1, 2):
        raise PoisonMessage("payload is not an opslog batch v1 or v2")
    return payload


def v1_entries(payload: dict[str, Any]) -> list[Any]:
    """A v1 payload's record entries."""
    records = payload.get("records")
    if not isinstance(records, list):
        raise PoisonMessage("payload has no 'records' list")
    return records


def v2_groups(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A v2 payload's groups, each an object with a `records` list."""
    groups = payload.get("groups")
    if not isinstance(groups, list):
        raise PoisonMessage("payload has no 'groups' list")
    if not all(isinstance(g, dict) and isinstance(g.get("records"), list) for g in groups):
        raise PoisonMessage("payload group is not an object with a 'records' list")
    return groups


def v1_entry(group: dict[str, Any], rec: Any, index: int | None = None) -> dict[str, Any]:
    """A v2 record in its v1 form. Nulls are left out, as v1 leaves out what a record does not
    have; a record that is not an array of the right length is kept whole under `record`.
    With its `index` in the group, the record keeps its file identity and byte length too."""
    if isinstance(rec, list) and len(rec) == ROW_LENGTH:
        entry = {key: value for key, value in zip(ROW_FIELDS, rec, strict=True) if value is not None}
    else:
        entry = {"record": rec}
    entry.update((key, group[key]) for key in GROUP_FIELDS if key in group)
    lengths = group.get("lengths")
    if index is not None and "file" in group and isinstance(lengths, list) and index < len(lengths):
        entry["file"], entry["len"] = group["file"], lengths[index]
    return entry


def decode_batch(body: bytes) -> list[Any]:
    """The records of a payload of either version, as v1 entries (dicts with "id"...): for tools
    and tests. PoisonMessage if the payload itself is unusable."""
    payload = load_payload(body)
    if payload["v"] == 1:
        return v1_entries(payload)
    return [v1_entry(group, rec, i) for group in v2_groups(payload) for i, rec in enumerate(group["records"])]
