"""The one record schema, and its wire forms: the public face of this package.

A record is one log line (or one multiline event) as the shipper read it. It
travels to RabbitMQ inside a batch payload, and the consumer turns each record
of a payload into a MongoDB `logs` document (`decode_documents`).

Payload v2, what shippers send::

    {"v": 2, "groups": [{"host": H, "app": A, "source": S, "received_at": T,
                         "records": [[id, offset, ts, message, level, fields, parse_error], ...]},
                        ...]}

Shippers since per-file coverage add to each group `"file": F, "lengths": [n, ...]`: the
file's identity and, in step with `records`, the bytes of the file each record covers; the
documents get them as `file` and `len` (optional: older shippers' records are stored without,
and older consumers ignore both keys).

A group is a run of records read from one file at one time (the shipper makes
one per `Shipper._add_records` call), so what they share is written once; a
record is an array in the order of `ROW_FIELDS`, where `ts`, `level`, `fields`
and `parse_error` may be null (a null `ts`: the line has no time of its own,
and the document gets `received_at`). Next to v1: no dict per record to build
or to parse, fewer bytes, and `received_at` converted once per group (the
figures: bench/README.md, "The record wire format").

Payload v1, what older shippers send::

    {"v": 1, "records": [{"id", "ts", "received_at", "host", "app", "source", "offset",
                          "message", "level"?, "fields"?, "parse_error"?}, ...]}

Consumers take both, so shippers can be upgraded one at a time once the
consumers are (an older consumer dead-letters v2 as unknown). v1 stays the
self-describing form: dead-letter messages use it (each record readable and
fixable on its own, and the message publishable again as it is), and
`decode_batch` gives the records of any payload in it, for tools (dead-letter inspection) and tests.
Times are epoch seconds on the wire; in documents, naive datetimes in UTC (`to_document`).

Record id (`IdHasher`): a hash of (host, file fingerprint, byte offset, raw bytes). The
fingerprint identifies the file's content, not its path, so the same line
re-read after a crash, a lost registry, a rename or a redelivery gets the same
`_id`; new content at a reused offset (truncation, inode reuse) gets a new one.

One concern per module:

- `schema`: the names and limits (levels, row layout, depth and name bounds);
- `wire`: record ids, v2 payloads built (`BatchBuilder`), payloads read back as v1
  entries (`decode_batch`), dead-letter bodies (`encode_rejected`);
- `documents`: payloads into `logs` documents, each record checked against the
  schema (`decode_documents`, `to_document`), and back (`to_entry`).
"""

from __future__ import annotations

from common.record.documents import decode_documents, to_document, to_entry
from common.record.schema import (
    ERROR_LEVELS,
    GROUP_FIELDS,
    LEVELS,
    MAX_FIELDS_DEPTH,
    MAX_NAME_CHARS,
    PAYLOAD_VERSION,
    ROW_FIELDS,
)
from common.record.wire import BatchBuilder, IdHasher, decode_batch, encode_rejected, row

__all__ = [
    "ERROR_LEVELS", "GROUP_FIELDS", "LEVELS", "MAX_FIELDS_DEPTH", "MAX_NAME_CHARS", "PAYLOAD_VERSION", "ROW_FIELDS",
    "BatchBuilder", "IdHasher", "decode_batch", "decode_documents", "encode_rejected", "row", "to_document",
    "to_entry",
]
