"""Which files are being tailed, where each one is read from, and when one is done.

`Files.scan()` matches the inputs' globs, opens files it does not track yet
and checks the ones it does. Where a newly opened file is read from:

- its saved offset, when the registry knows its (device, inode) with the same
  fingerprint (a restart, a rename, a reopen after `close_inactive`);
- the offset a copy was made from, when it has the fingerprint of a known
  file and the same bytes before that file's confirmed offset
  (copytruncate's `app.log.1`, which holds what the original had before it
  was truncated: what was confirmed from the original is not read again);
- the end, for `start_at: end` on the very first start only;
- otherwise the start: a file that appears while we run is always read whole.

What a check finds, the shipper acts on (it owns the batch): a truncated file
(shorter than what we read, or a new first line) is restarted at 0 with its
new fingerprint; a file no watched path names any more (rotated away,
deleted) is read to its end and then released after `rotate_wait`; an idle
one after `close_inactive`, to be reopened when it grows.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from enum import Enum

from common.config import InputConfig, ShipperConfig
from shipper.container import ContainerFrames, container_frames
from shipper.discovery import Finder, Found
from shipper.multiline import Multiline
from shipper.parsers import Parser, build_parser
from shipper.registry import Registry
from shipper.tailer import TailedFile, file_key

log = logging.getLogger(__name__)


@dataclass
class Input:
    cfg: InputConfig
    parse: Parser = field(init=False)
    finder: Finder = field(init=False)

    def __post_init__(self) -> None:
        self.parse = build_parser(self.cfg)
        self.finder = Finder(self.cfg)


@dataclass
class Tracked:
    file: TailedFile
    input: Input
    multiline: Multiline | None = None
    frames: ContainerFrames | None = None  # container logs: the runtime's framing and partial lines


class Finding(Enum):
    TRUNCATED = "truncated"   # restart it at 0 (after shipping what is pending)
    ROTATED = "rotated"       # read to its end, no watched path names it: release it
    DELETED = "deleted"       # the same, and its registry entry can go
    IDLE = "idle"             # nothing new for close_inactive: release it until it grows


class Files:
    def __init__(self, cfg: ShipperConfig, registry: Registry, inputs: list[Input]):
        self.cfg = cfg
        self.registry = registry
        self.inputs = inputs
        self.tracked: dict[str, Tracked] = {}
        self._warned_cap = False

    def scan(self, first_start: bool) -> list[tuple[Tracked, Finding]]:
        """Open the files to read, and report what changed about the tracked ones."""
        now = time.time()
        seen: set[str] = set()
        complete = True
        for inp in self.inputs:
            discovery = inp.finder.find()
            complete = complete and discovery.complete
            for found in discovery.found:
                path, st = found.path, found.st
                key = file_key(st)
                if key in seen:
                    continue  # another input reads it already, under the name it found first
                seen.add(key)
                tracked = self.tracked.get(key)
                if tracked is not None:
                    tracked.file.path = path  # renamed to another watched name: same file, same offsets
                    continue
                entry = self.registry.get(key)
                if entry is not None and entry.offset == st.st_size:
                    continue  # released earlier and nothing new since
                if inp.cfg.ignore_older and now - st.st_mtime > inp.cfg.ignore_older:
                    if entry is None:
                        self._skip_old(found, inp)
                    continue
                self._open(found, inp, first_start)
        if complete:  # a walk cut short did not see every file: their offsets must stay
            self.registry.prune(seen | set(self.tracked))
        findings = []
        for key, tracked in list(self.tracked.items()):
            finding = self._check(key, tracked)
            if finding is not None:
                findings.append((tracked, finding))
        return findings

    def _open(self, found: Found, inp: Input, first_start: bool) -> None:
        path = found.path
        if len(self.tracked) >= self.cfg.max_open_files:
            if not self._warned_cap:
                log.warning("max_open_files (%d) reached; %s waits until a file is released",
                            self.cfg.max_open_files, path)
                self._warned_cap = True
            return
        file = TailedFile.open(path, inp.cfg.max_line_bytes, found.real, found.root)
        if file is None or file.key in self.tracked:
            if file is not None:
                file.close()
            return
        start, why = self._start_offset(file, inp.cfg, first_start)
        file.seek(start)
        file.confirmed = start
        if start > 0:
            assert file.fingerprint is not None
            self.registry.confirm(file.key, path, file.fingerprint, start, file.tail_hash(start))
        self.tracked[file.key] = Tracked(file, inp, Multiline(inp.cfg) if inp.cfg.multiline else None,
                                         container_frames(inp.cfg, path))
        log.info("tailing %s from offset %d (%s)", path, start, why)

    def _start_offset(self, file: TailedFile, cfg: InputConfig, first_start: bool) -> tuple[int, str]:
        assert file.fingerprint is not None
        entry = self.registry.get(file.key)
        if entry is not None and entry.fingerprint == file.fingerprint:
            if entry.offset <= file.size:
                return entry.offset, "saved offset"
            log.warning("%s is shorter (%d bytes) than its saved offset %d: truncated while we were away; "
                        "reading it from the start (what was written after our last read is lost unless a "
                        "copy matched by the input's paths holds it)", file.path, file.size, entry.offset)
            self.registry.retire(file.key)
        elif entry is not None:
            log.info("%s has new content under the inode %s had: reading it from the start",
                     file.path, entry.path)
            self.registry.retire(file.key)
        copied = self.registry.copy_offset(file.fingerprint, file.size, file.tail_hash, exclude=file.key)
        if copied is not None:
            return copied.offset, f"a copy of {copied.path}, confirmed up to there"
        if first_start and cfg.start_at == "end":
            return file.size, "start_at: end"
        return 0, "new file"

    def _skip_old(self, found: Found, inp: Input) -> None:
        """Register an old file at its end: `ignore_older` skips what it holds, not what comes later."""
        path = found.path
        file = TailedFile.open(path, inp.cfg.max_line_bytes, found.real, found.root)
        if file is None:
            return
        try:
            assert file.fingerprint is not None
            self.registry.confirm(file.key, path, file.fingerprint, file.size, file.tail_hash(file.size))
            log.info("ignoring the %d bytes of %s: older than ignore_older", file.size, path)
        finally:
            file.close()

    def _check(self, key: str, tracked: Tracked) -> Finding | None:
        file = tracked.file
        st = file.stat()
        try:
            # without follow_symlinks, a symlink put where the file was does not name it
            at_path = os.stat(file.path) if tracked.input.cfg.follow_symlinks else os.lstat(file.path)
        except OSError:
            at_path = None
        file.orphaned = at_path is None or file_key(at_path) != key
        file.size = st.st_size
        if file.fingerprint is not None and (
                st.st_size < file.offset or file.current_fingerprint() != file.fingerprint):
            return Finding.TRUNCATED
        at_end = file.offset >= st.st_size
        idle = time.monotonic() - file.last_growth
        if file.orphaned and at_end and idle >= self.cfg.rotate_wait:
            return Finding.DELETED if st.st_nlink == 0 else Finding.ROTATED
        if not file.orphaned and at_end and not file.pending and idle >= tracked.input.cfg.close_inactive:
            return Finding.IDLE
        return None

    def restart(self, tracked: Tracked) -> None:
        """Read a truncated file again from 0, as the new content it now is.

        Its entry is retired, not dropped: a copy of the old content finds it there."""
        file = tracked.file
        size = file.stat().st_size
        log.warning("%s was truncated (read up to %d, now %d bytes): reading it from the start; what was "
                    "written after our last read is lost unless a copy matched by the input's paths holds it",
                    file.path, file.offset, size)
        self.registry.retire(file.key)
        file.seek(0)
        file.confirmed = 0
        file.size = size
        file.fingerprint = file.current_fingerprint()
        if tracked.multiline:
            tracked.multiline.reset()
        if tracked.frames:
            tracked.frames.reset()

    def release(self, tracked: Tracked, forget: bool) -> None:
        """Close a finished file (the shipper has confirmed all of it that it will ship)."""
        file = tracked.file
        log.info("released %s at offset %d%s", file.path, file.confirmed, " (deleted)" if forget else "")
        file.close()
        self.tracked.pop(file.key, None)
        self._warned_cap = False
        if forget:
            self.registry.forget(file.key)

    def close(self) -> None:
        for tracked in self.tracked.values():
            tracked.file.close()
        self.tracked.clear()

    def bytes_behind(self) -> dict[str, int]:
        return {t.file.path: max(0, t.file.size - t.file.confirmed) for t in list(self.tracked.values())}
