"""The offsets registry: how far each file has been confirmed by the broker.

One versioned JSON file in `state_dir`, written atomically (temp file, fsync,
rename, fsync of the directory), so a crash leaves either the old or the new
registry, never half of one. Entries are keyed by file identity
(device:inode) and carry the content fingerprint, so a reused inode or a
truncated file is recognised. Offsets recorded here have all been confirmed:
at worst a crash re-sends what was confirmed since the last save, and the
deterministic record ids make that harmless downstream.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

VERSION = 1
FILENAME = "registry.json"


@dataclass
class Entry:
    path: str
    fingerprint: str
    offset: int
    updated: float


class Registry:
    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, FILENAME)
        self.entries: dict[str, Entry] = {}
        self.existed = False  # False on a first start: only then does `start_at: end` apply
        self.dirty = False
        self._saved_at = 0.0

    def load(self) -> Registry:
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            with open(self.path, "rb") as fh:
                data = json.load(fh)
            version = data.get("version") if isinstance(data, dict) else None
            if version != VERSION:
                raise ValueError(f"unsupported registry version {version!r}")
            self.entries = {key: Entry(**value) for key, value in data["files"].items()}
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
            self.existed = True
        return self

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def confirm(self, key: str, path: str, fingerprint: str, offset: int) -> None:
        """Record that everything before `offset` in this file is confirmed by the broker."""
        entry = self.entries.get(key)
        if entry is None or entry.fingerprint != fingerprint:
            self.entries[key] = Entry(path, fingerprint, offset, time.time())
        else:
            entry.path, entry.offset, entry.updated = path, offset, time.time()
        self.dirty = True

    def forget(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.dirty = True

    def save(self, min_interval: float = 0.0) -> None:
        """Write the registry if it changed and `min_interval` passed since the last write."""
        now = time.monotonic()
        if not self.dirty or now - self._saved_at < min_interval:
            return
        data = {"version": VERSION, "files": {k: asdict(v) for k, v in self.entries.items()}}
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
