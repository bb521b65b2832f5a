"""The offsets registry: how far each file has been confirmed by the broker.

One versioned JSON file in `state_dir`, written atomically (temp file, fsync,
rename, fsync of the directory), so a crash leaves either the old or the new
registry, never half of one. Entries are keyed by file identity
(device:inode) and carry the content fingerprint, so a reused inode or a
truncated file is recognised. Offsets recorded here have all been confirmed:
at worst a crash re-sends what was confirmed since the last save, and the
deterministic record ids make that harmless downstream.

Each entry also keeps `tail`, a hash of the bytes just before its offset. When
a file is truncated or its inode gets new content, its entry is *retired*
rather than dropped: a copy of the old content (copytruncate's `app.log.1`)
has the same fingerprint and the same bytes before that offset, and is read
from there instead of from its start (`copy_offset`).

Journal inputs (shipper.journals) keep their confirmed cursor under `journals`, keyed by
the input's journal (`journal:<directory or "system">`, `#n` for a second input on it): not
a file, so not pruned with the files: a cursor no configured input has used for UNSEEN_TTL
is dropped at the next start or reload (`prune_journals`; an input put back within the hour
keeps its position). An older shipper reading this file ignores the key.

Each entry also keeps the content's `identity` (shipper.tailer.file_identity): a restart keeps
it, and a copy found by `copy_offset` inherits it. Version 1 files (no `tail`, no `retired`) and
entries without `identity` load as they are.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

VERSION = 2
READABLE_VERSIONS = (1, 2)
FILENAME = "registry.json"
RETIRED_MAX = 256               # copies are looked for right after a rotation: a few recent ones suffice
RETIRED_TTL = 24 * 3600.0
UNSEEN_TTL = 3600.0             # an entry whose file no watched path names is dropped after this


@dataclass
class Entry:
    path: str
    fingerprint: str
    offset: int
    updated: float
    tail: str | None = None  # hash of the bytes before `offset` (shipper.tailer.tail_hash)
    identity: str | None = None  # the content's identity for coverage (shipper.tailer.file_identity)


class Registry:
    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, FILENAME)
        self.entries: dict[str, Entry] = {}
        self.retired: list[Entry] = []
        self.journals: dict[str, dict[str, Any]] = {}  # journal key -> {"cursor", "seqnum", "updated"}
        self.existed = False  # False on a first start: only then does `start_at: end` apply
        self.dirty = False
        self._saved_at = 0.0

    def load(self) -> Registry:
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            with open(self.path, "rb") as fh:
                data = json.load(fh)
            version = data.get("version") if isinstance(data, dict) else None
            if version not in READABLE_VERSIONS:
                raise ValueError(f"unsupported registry version {version!r}")
            self.entries = {key: Entry(**value) for key, value in data["files"].items()}
            self.retired = [Entry(**value) for value in data.get("retired", [])]
            journals = data.get("journals") or {}
            if not isinstance(journals, dict):
                raise ValueError("'journals' is not an object")
            self.journals = {key: value for key, value in journals.items()
                             if isinstance(value, dict) and isinstance(value.get("cursor"), str)}
            self.existed = True
        except FileNotFoundError:
            log.info("no offsets registry at %s: first start", self.path)
        except (ValueError, TypeError, KeyError) as exc:
            # Safe default: read files again from the start. Records keep their ids,
            # so the consumer stores nothing twice; nothing is skipped.
            bad = f"{self.path}.corrupt-{int(time.time())}"
            os.replace(self.path, bad)
            log.error("offsets registry %s is unreadable (%s); kept it as %s and will re-read "
                      "files from their start (downstream de-duplicates)", self.path, exc, bad)
            self.entries, self.retired, self.journals = {}, [], {}
            self.existed = True
        return self

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def confirm(self, key: str, path: str, fingerprint: str, offset: int, tail: str | None = None,
                identity: str | None = None) -> None:
        """Record that everything before `offset` in this file is confirmed by the broker."""
        entry = self.entries.get(key)
        if entry is None or entry.fingerprint != fingerprint:
            self.entries[key] = Entry(path, fingerprint, offset, time.time(), tail, identity)
        else:
            entry.path, entry.offset, entry.updated, entry.tail = path, offset, time.time(), tail
            entry.identity = identity or entry.identity
        self.dirty = True

    def journal_cursor(self, key: str) -> str | None:
        """The confirmed cursor of a journal input, if it has one."""
        entry = self.journals.get(key)
        return entry["cursor"] if entry is not None else None

    def confirm_journal(self, key: str, cursor: str, seqnum: int) -> None:
        """Record that a journal input's entries up to `cursor` are confirmed by the broker."""
        self.journals[key] = {"cursor": cursor, "seqnum": seqnum, "updated": time.time()}
        self.dirty = True

    def forget(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.dirty = True

    def retire(self, key: str) -> None:
        """Move the entry of a file whose content is gone (truncated, inode reused) aside,
        where `copy_offset` can still find it for a copy of that content."""
        entry = self.entries.pop(key, None)
        if entry is None:
            return
        if entry.offset > 0 and entry.tail is not None:
            self.retired.append(entry)
            del self.retired[:-RETIRED_MAX]
        self.dirty = True

    def copy_offset(self, fingerprint: str, size: int, tail_at: Callable[[int], str | None],
                    exclude: str) -> Entry | None:
        """The entry whose content a file with `fingerprint` and `size` is a copy of, if any:
        same fingerprint, and the same bytes before the entry's offset (`tail_at(offset)`).
        The furthest such entry wins: everything before its offset is already confirmed."""
        candidates = [e for k, e in self.entries.items() if k != exclude and e.fingerprint == fingerprint]
        candidates += [e for e in self.retired if e.fingerprint == fingerprint]
        for entry in sorted(candidates, key=lambda e: e.offset, reverse=True):
            if 0 < entry.offset <= size and entry.tail is not None and tail_at(entry.offset) == entry.tail:
                return entry
        return None

    def prune(self, seen: Iterable[str]) -> None:
        """Drop entries of files no watched path has named for UNSEEN_TTL (renamed out of
        the globs, or gone while we were not running), and old retired entries."""
        now, seen = time.time(), set(seen)
        stale = [k for k, e in self.entries.items() if k not in seen and now - e.updated > UNSEEN_TTL]
        for key in stale:
            del self.entries[key]
        kept = [e for e in self.retired if now - e.updated <= RETIRED_TTL]
        if stale or len(kept) != len(self.retired):
            self.retired = kept
            self.dirty = True

    def prune_journals(self, in_use: Iterable[str]) -> None:
        """Drop the cursors of journal inputs no longer configured for UNSEEN_TTL; a cursor is
        stamped `unused_since` when the shipper first finds it unconfigured."""
        now, in_use = time.time(), set(in_use)
        for key, entry in list(self.journals.items()):
            if key in in_use:
                if entry.pop("unused_since", None) is not None:
                    self.dirty = True
            elif not isinstance(entry.get("unused_since"), (int, float)):
                entry["unused_since"] = now
                self.dirty = True
            elif now - entry["unused_since"] > UNSEEN_TTL:
                del self.journals[key]
                self.dirty = True
                log.info("forgot the position of journal input %s: not configured for %.0f s", key, UNSEEN_TTL)

    def save(self, min_interval: float = 0.0) -> None:
        """Write the registry if it changed and `min_interval` passed since the last write."""
        now = time.monotonic()
        if not self.dirty or now - self._saved_at < min_interval:
            return
        data = {"version": VERSION, "files": {k: asdict(v) for k, v in self.entries.items()},
                "retired": [asdict(e) for e in self.retired], "journals": self.journals}
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.dirty, self._saved_at = False, now
