"""The record schema's names and limits, shared by the wire form and the documents."""

from __future__ import annotations

PAYLOAD_VERSION = 2  # what encoders write; v1 is still decoded
# Deeper `fields` are refused (dead-lettered) whatever the publisher: MongoDB documents 100 levels,
# SecantusDB stores past it, and the UI's encoder (orjson) writes at most 254. Our shipper keeps 20.
MAX_FIELDS_DEPTH = 100
# Host and app names make the `_id` of the rollups and hosts documents: a record naming a host of
# megabytes would make counter updates past MongoDB's 16 MB that no retry can store.
MAX_NAME_CHARS = 1024
LEVELS = ("debug", "info", "warning", "error", "critical")
ERROR_LEVELS = frozenset(("error", "critical"))  # what the UI and the hosts counters count as errors
GROUP_FIELDS = ("host", "app", "source", "received_at")
# Optional in a v2 group (shippers since coverage, common.coverage): `file`, the file's identity
# (the same across its renames and a copytruncate copy), and `lengths`, one per record in step with
# `records`: the bytes of the file each covers. Stored as the documents' `file` and `len`.
COVERAGE_GROUP_FIELDS = ("file", "lengths")
MAX_FILE_CHARS = 64
ROW_FIELDS = ("id", "offset", "ts", "message", "level", "fields", "parse_error")
ROW_LENGTH = len(ROW_FIELDS)
