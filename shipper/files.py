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
from shipper.watcher import matching_files

log = logging.getLogger(__name__)


@dataclass
class Input:
    input_config: InputConfig
    parse: Parser = field(init=False)
    finder: Finder = field(init=False)

    def __post_init__(self) -> None:
        self.parse = build_parser(self.input_config)
        self.finder = Finder(self.input_config)


@dataclass
class Tracked:
    """A file being tailed, with what joins its lines: the joiners hold lines read past the
    confirmed offset, so whatever moves the file back resets them too."""

    file: TailedFile
    input: Input
    multiline: Multiline | None = None
    frames: ContainerFrames | None = None  # container logs: the runtime's framing and partial lines

    @classmethod
    def of(cls, file: TailedFile, inp: Input) -> Tracked:
        cfg = inp.input_config
        return cls(file, inp, Multiline(cfg) if cfg.multiline else None, container_frames(cfg, file.path))

    def rewind(self) -> None:
        """Forget everything read but not confirmed: it is read again from the file."""
        self.file.rewind()
        self._reset_joiners()

    def restart(self) -> None:
        """The file was truncated: read its new content from 0 (tailer.TailedFile.restart)."""
        self.file.restart()
        self._reset_joiners()

    def reconfigure(self, inp: Input) -> None:
        """Read the file with another input's settings, again from its confirmed offset."""
        fresh = Tracked.of(self.file, inp)
        self.input, self.multiline, self.frames = inp, fresh.multiline, fresh.frames
        self.file.reconfigure(inp.input_config.max_line_bytes)

    def _reset_joiners(self) -> None:
        if self.multiline:
            self.multiline.reset()
        if self.frames:
            self.frames.reset()


class Finding(Enum):
    TRUNCATED = "truncated"   # restart it at 0 (after shipping what is pending)
    ROTATED = "rotated"       # read to its end, no watched path names it: release it
    DELETED = "deleted"       # the same, and its registry entry can go
    IDLE = "idle"             # nothing new for close_inactive: release it until it grows


class Files:
    def __init__(self, shipper_config: ShipperConfig, registry: Registry, inputs: list[Input]):
        self.shipper_config = shipper_config
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
                    tracked.file.renamed(path)  # renamed to another watched name: same file, same offsets
                    continue
                entry = self.registry.get(key)
                if entry is not None and entry.offset == st.st_size:
                    continue  # released earlier and nothing new since
                if inp.input_config.ignore_older and now - st.st_mtime > inp.input_config.ignore_older:
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
        if len(self.tracked) >= self.shipper_config.max_open_files:
            if not self._warned_cap:
                log.warning("max_open_files (%d) reached; %s waits until a file is released",
                            self.shipper_config.max_open_files, path)
                self._warned_cap = True
            return
        file = TailedFile.open(path, inp.input_config.max_line_bytes, found.real, found.root)
        if file is None or file.key in self.tracked:
            if file is not None:
                file.close()
            return
        start, why, identity = self._start_offset(file, inp.input_config, first_start)
        file.resume(start)
        if identity:
            file.identity = identity
        if start > 0:
            assert file.fingerprint is not None
            self.registry.confirm(file.key, path, file.fingerprint, start, file.tail_hash(start), file.identity)
        self.tracked[file.key] = Tracked.of(file, inp)
        log.info("tailing %s from offset %d (%s)", path, start, why)

    def _start_offset(self, file: TailedFile, cfg: InputConfig, first_start: bool) -> tuple[int, str, str | None]:
        """Where to read `file` from, why, and the identity it continues (None: its own, new)."""
        assert file.fingerprint is not None
        entry = self.registry.get(file.key)
        if entry is not None and entry.fingerprint == file.fingerprint:
            if entry.offset <= file.size:
                return entry.offset, "saved offset", entry.identity
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
            return copied.offset, f"a copy of {copied.path}, confirmed up to there", copied.identity
        if first_start and cfg.start_at == "end":
            return file.size, "start_at: end", None
        return 0, "new file", None

    def _skip_old(self, found: Found, inp: Input) -> None:
        """Register an old file at its end: `ignore_older` skips what it holds, not what comes later."""
        path = found.path
        file = TailedFile.open(path, inp.input_config.max_line_bytes, found.real, found.root)
        if file is None:
            return
        try:
            assert file.fingerprint is not None
            self.registry.confirm(file.key, path, file.fingerprint, file.size, file.tail_hash(file.size),
                                  file.identity)
            log.info("ignoring the %d bytes of %s: older than ignore_older", file.size, path)
        finally:
            file.close()

    def _check(self, key: str, tracked: Tracked) -> Finding | None:
        file = tracked.file
        st = file.stat()
        try:
            # without follow_symlinks, a symlink put where the file was does not name it
            at_path = os.stat(file.path) if tracked.input.input_config.follow_symlinks else os.lstat(file.path)
        except OSError:
            at_path = None
        file.orphaned = at_path is None or file_key(at_path) != key
        file.size = st.st_size
        if file.fingerprint is not None and (
                st.st_size < file.offset or file.current_fingerprint() != file.fingerprint):
            return Finding.TRUNCATED
        at_end = file.offset >= st.st_size
        idle = time.monotonic() - file.last_growth
        if file.orphaned and at_end and idle >= self.shipper_config.rotate_wait:
            return Finding.DELETED if st.st_nlink == 0 else Finding.ROTATED
        if not file.orphaned and at_end and not file.pending and idle >= tracked.input.input_config.close_inactive:
            return Finding.IDLE
        return None

    def restart(self, tracked: Tracked) -> None:
        """Read a truncated file again from 0, as the new content it now is.

        Its entry is retired, not dropped: a copy of the old content finds it there."""
        file = tracked.file
        log.warning("%s was truncated (read up to %d, now %d bytes): reading it from the start; what was "
                    "written after our last read is lost unless a copy matched by the input's paths holds it",
                    file.path, file.offset, file.stat().st_size)
        self.registry.retire(file.key)
        tracked.restart()

    def confirm(self, key: str, tracked: Tracked, end: int, tail: str | None) -> None:
        """The broker confirmed `tracked`'s lines up to `end`: move its offset, and the registry's.
        Nothing moves for a file released or restarted since (its lines were read again)."""
        file = tracked.file
        if self.tracked.get(key) is tracked and file.confirm(end):
            assert file.fingerprint is not None
            self.registry.confirm(key, file.path, file.fingerprint, end, tail, file.identity)

    def reconfigure(self, shipper_config: ShipperConfig) -> list[Tracked]:
        """Take reloaded settings (SIGHUP): a file whose input changed is read again from its
        confirmed offset with the new one. Returns the files no input reads any more, for the
        shipper to finish and release; a file rotated away is finished as it was."""
        kept = {inp.input_config: inp for inp in self.inputs}
        inputs = [kept.get(c) or Input(c) for c in shipper_config.inputs]
        owner: dict[str, Input] = {}
        for inp in reversed(inputs):  # the first input that matches a file reads it
            owner.update(dict.fromkeys(matching_files(inp.input_config), inp))
        unread = []
        for tracked in list(self.tracked.values()):
            if tracked.file.orphaned:
                continue
            inp = owner.get(tracked.file.path)
            if inp is None:
                unread.append(tracked)
            elif inp.input_config != tracked.input.input_config:
                tracked.reconfigure(inp)
        self.shipper_config, self.inputs = shipper_config, inputs
        return unread

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
