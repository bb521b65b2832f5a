"""One journal entry (a line of `journalctl -o json --all`) in, one record row out.

The mapping (issue 17):

- `__REALTIME_TIMESTAMP` (microseconds) -> `ts`;
- `PRIORITY` -> `level`: 0-2 critical, 3 error, 4 warning, 5-6 info, 7 debug;
- `MESSAGE` -> `message`; journalctl writes a value that is not valid UTF-8 (or holds control
  characters) as an array of byte values, which is decoded with replacement; a field given
  several times in one entry comes as an array of its values, joined with newlines; a message
  over `max_line_bytes` is cut there and flagged, as a long line of a file is;
- `app`: the input's, else `SYSLOG_IDENTIFIER`, else `_SYSTEMD_UNIT` (else `_COMM`, else
  "journal");
- `source`: `journal:<_SYSTEMD_UNIT>`, or `journal` for an entry without a unit;
- `fields`: the trusted fields journald itself adds (every `_NAME` field: `_SYSTEMD_UNIT`,
  `_PID`, `_COMM`, `_HOSTNAME`, `_BOOT_ID`, `_UID`, `_TRANSPORT`...) and `CONTAINER_NAME`; ids
  (`_PID`, `_UID`, `_GID`) as numbers. Each value is cut at FIELD_VALUE_MAX characters and the
  whole goes through common.fields' bounds, as parsed fields of a file line do;
- `offset`: the entry's sequence number (seqnum), the journal's position as a byte offset is a
  file's: context and coverage order a journal's records by it;
- `file` (coverage's identity, common.coverage.journal_identity: the journal's seqnum id and the
  input) and `len`: how many seqnums the entry closes, from the one after the entry the input
  read before it (`previous`, which the reader sets where it starts) through its own, so the
  entries its filters pass over are covered and a complete input is one range.

The record id hashes (host, seqnum id, seqnum, and the cursor's boot id, monotonic and
realtime timestamps and `x`, journald's hash of the entry's data). All of these are stored in
the entry itself, so the same entry read twice (a restart, a rewind, a lost registry) gets the
same `_id`, while another journal (a new seqnum id) or other content at the same seqnum gets
another. The cursor is used rather than a hash of the data: `x` already is one, and hashing a
1 MiB message again would cost more than the rest of the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from common.config import InputConfig
from common.coverage import journal_identity
from common.fields import MAX_BYTES, MAX_KEYS, Unencodable, bound_fields
from common.record import MAX_NAME_CHARS, IdHasher, row
from shipper.records import RECORD_OVERHEAD, Row, truncated_error

FIELD_VALUE_MAX = 64 * 1024  # characters of one field's value (a _CMDLINE can be long)
EXTRA_FIELDS = ("CONTAINER_NAME",)  # untrusted fields kept besides the trusted `_NAME` ones
NUMERIC_FIELDS = frozenset(("_PID", "_UID", "_GID"))
_LEVELS = ("critical", "critical", "critical", "error", "warning", "info", "info", "debug")


class Cursor(NamedTuple):
    """The parts of a journal cursor (`s=<seqnum id>;i=<seqnum, hex>;b=<boot id>;m=..;t=..;x=..`)."""

    seqnum_id: str
    seqnum: int
    rest: str  # b=, m=, t=, x=: where and what the entry is, besides its sequence number

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        parts = text.split(";")
        if len(parts) == 6 and [p[:2] for p in parts] == _CURSOR_PREFIXES:  # what journalctl writes
            try:
                return cls(parts[0][2:], int(parts[1][2:], 16), ";".join(parts[2:]))
            except ValueError:
                return None
        named = dict(part.split("=", 1) for part in parts if "=" in part)
        try:
            seqnum = int(named["i"], 16)
            seqnum_id = named["s"]
        except (KeyError, ValueError):
            return None
        return cls(seqnum_id, seqnum, ";".join(f"{k}={named.get(k, '')}" for k in ("b", "m", "t", "x")))


_CURSOR_PREFIXES = ["s=", "i=", "b=", "m=", "t=", "x="]


class Entry(NamedTuple):
    """A journal entry made into a record, with the position it stands for."""

    cursor: str
    seqnum: int
    app: str
    source: str
    row: Row
    size: int  # what it adds to a batch, as shipper.records counts a line
    file: str  # coverage's identity of the journal as this input reads it
    span: int  # seqnums it closes: (seqnum - span, seqnum]


def text(value: Any) -> str:
    """A journal value as text: a string, bytes (an array of byte values) decoded with
    replacement, or the values of a repeated field joined by newlines."""
    if type(value) is str:
        return value
    if type(value) is list:
        if value and all(type(v) is int for v in value):
            return bytes(v & 0xFF for v in value).decode("utf-8", "replace")
        return "\n".join(text(v) for v in value)
    return "" if value is None else str(value)


def _level(value: Any) -> str | None:
    try:
        number = int(text(value))
    except ValueError:
        return None
    return _LEVELS[number] if 0 <= number < len(_LEVELS) else None


def _kind(name: str) -> int:
    """0: not kept in `fields`; 1: kept as text; 2: kept as a number when it is one."""
    if not ((name.startswith("_") and not name.startswith("__")) or name in EXTRA_FIELDS):
        return 0
    return 2 if name in NUMERIC_FIELDS else 1


KINDS_CACHED = 10_000  # field names whose _kind is remembered (a journal has a few hundred)


def _fields(data: dict[str, Any], kinds: dict[str, int]) -> tuple[dict[str, Any], str | None]:
    """The record's fields; `kinds` remembers _kind per name, the costly part of the walk."""
    fields: dict[str, Any] = {}
    cut, size = [], 0
    for name, raw in data.items():
        kind = kinds.get(name)
        if kind is None:
            kind = _kind(name)
            if len(kinds) < KINDS_CACHED:
                kinds[name] = kind
        if not kind:
            continue
        value = raw if type(raw) is str else text(raw)
        if kind == 2 and value.isdigit():
            fields[name] = int(value)
            continue
        if len(value) > FIELD_VALUE_MAX:
            value = value[:FIELD_VALUE_MAX]
            cut.append(name)
        fields[name] = value
        size += len(value)
    error = f"fields bounded: {', '.join(cut)} cut at {FIELD_VALUE_MAX} characters" if cut else None
    if size * 2 > MAX_BYTES or len(fields) > MAX_KEYS:  # only then can a bound of common.fields apply
        try:
            fields, note = bound_fields(fields)
        except Unencodable as exc:  # not with strings and ints; kept for the contract of bound_fields
            fields, note = {}, f"fields dropped: {exc}"
        if note:
            error = f"{error}; {note}" if error else note
    return fields, error


def _message(value: Any, max_bytes: int) -> tuple[str, bool]:
    """The message, and whether it was cut at `max_bytes` bytes of UTF-8."""
    if type(value) is list and value and all(type(v) is int for v in value):
        raw = bytes(v & 0xFF for v in value)
        return raw[:max_bytes].decode("utf-8", "replace"), len(raw) > max_bytes
    message = text(value)
    if len(message) * 4 <= max_bytes:  # no string this short can encode past the bound
        return message, False
    raw = message.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return message, False
    return raw[:max_bytes].decode("utf-8", "ignore"), True


def _name(value: str) -> str:
    return value[:MAX_NAME_CHARS]


def entry_maker(host: str, input_config: InputConfig, input_key: str,
                previous: dict[str, int]) -> Callable[[dict[str, Any]], Entry | None]:
    """The function turning one decoded journalctl JSON object into an Entry (None: no cursor).
    `previous`: per seqnum id, the seqnum this input read last; the reader sets it where it starts."""
    app_override, max_bytes = input_config.app, input_config.max_line_bytes
    journals: dict[str, tuple[IdHasher, str]] = {}  # seqnum id -> its ids' hasher, its coverage identity
    kinds: dict[str, int] = {}

    def make(data: dict[str, Any]) -> Entry | None:
        cursor_text = data.get("__CURSOR")
        cursor = Cursor.parse(cursor_text) if type(cursor_text) is str else None
        if cursor is None:
            return None
        journal = journals.get(cursor.seqnum_id)
        if journal is None:
            journal = journals[cursor.seqnum_id] = (IdHasher(host, f"journal:{cursor.seqnum_id}"),
                                                    journal_identity(cursor.seqnum_id, input_key))
        hasher, identity = journal
        last = previous.get(cursor.seqnum_id)
        previous[cursor.seqnum_id] = cursor.seqnum
        try:
            ts: float | None = int(data["__REALTIME_TIMESTAMP"]) / 1e6
        except (KeyError, ValueError, TypeError):
            ts = None
        message, cut = _message(data.get("MESSAGE"), max_bytes)
        fields, error = _fields(data, kinds)
        if cut:
            error = truncated_error(max_bytes, error)
        unit = data.get("_SYSTEMD_UNIT")
        unit = _name(text(unit)) if unit is not None else ""
        app = app_override or _name(text(data.get("SYSLOG_IDENTIFIER") or unit or data.get("_COMM") or "journal"))
        record = row(hasher(cursor.seqnum, cursor.rest.encode()), cursor.seqnum, ts, message,
                     _level(data["PRIORITY"]) if "PRIORITY" in data else None, fields, error)
        return Entry(cursor_text, cursor.seqnum, app, _name(f"journal:{unit}") if unit else "journal", record,
                     len(message) + RECORD_OVERHEAD, identity,
                     cursor.seqnum - last if last is not None and cursor.seqnum > last else 1)

    return make
