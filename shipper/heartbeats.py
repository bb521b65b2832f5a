"""Per-file heartbeats (common.record.heartbeats): every `heartbeat_interval`, one message naming
each file the shipper knows, with its size and confirmed offset, so the UI can tell lag (bytes not
stored yet), gaps (bytes that never will be) and silence (a shipper that stopped) apart.

Files open now are `reading`; files the registry still holds but that are released (idle, or
rotated away and read to their end) are `idle`, with their confirmed offset; a content that ended
(truncated, deleted) is sent once more with that state, its size the most that was known of it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from common.record import heartbeats
from shipper.files import Files
from shipper.tailer import TailedFile, file_key

log = logging.getLogger(__name__)

MAX_ENDED = 1000


class Heartbeats:
    def __init__(self, host: str, interval: float):
        self.host, self.interval = host, interval
        self._next = 0.0
        self._ended: list[dict[str, Any]] = []
        self._sizes: dict[str, int] = {}  # identity -> the size last sent (what was known of it)

    def due(self) -> bool:
        return self.interval > 0 and time.monotonic() >= self._next

    def ended(self, file: TailedFile, state: str) -> None:
        """`file`'s content is gone (`truncated`) or its file deleted: say so in the next heartbeat.
        Call before the file is restarted: its identity and sizes are the old content's."""
        if self.interval <= 0 or file.fingerprint is None:
            return
        entry = _entry(file, state)
        entry["size"] = max(entry["size"] if state != "truncated" else 0, self._sizes.pop(file.identity, 0),
                            file.offset, file.confirmed)
        self._ended.append(entry)
        del self._ended[:-MAX_ENDED]

    def body(self, files: Files, journals: list[dict[str, Any]]) -> bytes | None:
        """The heartbeat message now (None: no file or journal to speak of); the next one is due an
        interval later. `journals`: the journal inputs' entries (shipper.journals)."""
        self._next = time.monotonic() + self.interval
        entries = []
        tracked = set()
        for t in list(files.tracked.values()):
            file = t.file
            tracked.add(file.key)
            if file.fingerprint is None:
                continue  # truncated, waiting for a first line: no identity yet
            try:
                entry = _entry(file, "reading")
            except OSError:
                continue
            self._sizes[file.identity] = entry["size"]
            entries.append(entry)
        for key, reg in list(files.registry.entries.items()):
            if key in tracked or reg.identity is None:
                continue
            entries.append(_idle(key, reg))
        entries += self._ended
        entries += journals
        if not entries:
            return None  # nothing read yet: a heartbeat would say nothing
        return heartbeats.encode(self.host, time.time(), self.interval, entries)

    def sent(self) -> None:
        """The broker took the message: the ended files need not be sent again."""
        self._ended = []


def _entry(file: TailedFile, state: str) -> dict[str, Any]:
    st = file.stat()
    return {"file": file.identity, "source": file.path, "names": list(file.names),
            "size": st.st_size, "confirmed": file.confirmed, "inode": file.key, "fingerprint": file.fingerprint,
            "mtime": st.st_mtime, "state": state}


def _idle(key: str, reg: Any) -> dict[str, Any]:
    """A released file: its size now if its path still names it, else what was confirmed."""
    size, mtime = reg.offset, None
    try:
        st = os.stat(reg.path)
        if file_key(st) == key:
            size, mtime = st.st_size, st.st_mtime
    except OSError:
        pass
    return {"file": reg.identity, "source": reg.path, "names": [reg.path], "size": size, "confirmed": reg.offset,
            "inode": key, "fingerprint": reg.fingerprint, "mtime": mtime, "state": "idle"}
