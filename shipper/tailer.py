"""Reading one file like `tail -f`, by identity rather than by name.

A `TailedFile` is one open file, identified by (device, inode) plus a
fingerprint of its first line, so a rename (rotation) keeps its identity and
its offsets, and a new file that reuses an inode does not inherit them. It
hands out complete lines with their byte offsets; a trailing partial line is
held until its newline arrives. It remembers two offsets: `offset`, how far it
has read, and `confirmed`, how far the broker has confirmed. It owns them:
`confirmed` moves only through `resume` (an offset confirmed earlier),
`confirm` (a batch confirmed now) and `restart` (truncated: back to 0). After
a broker failure the shipper rewinds to `confirmed`, so nothing read but
unconfirmed is lost.

`tail_hash(offset)` hashes the bytes just before an offset: with the
fingerprint it tells a copy of a file (copytruncate) from a new file that
merely starts with the same line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_mod
import time

from shipper.lines import Line

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 256
TAIL_BYTES = 256
READ_CHUNK = 256 * 1024


def file_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def file_identity(key: str, fp: str) -> str:
    """A new file content's identity, for coverage: born with (device:inode, fingerprint) when the
    content is first seen, then kept across renames (same inode) and handed to a copytruncate copy
    (the registry's entry of the original), so a file's history is one whatever its names."""
    return hashlib.blake2b(f"{key}\0{fp}".encode(), digest_size=8).hexdigest()


def fingerprint(fd: int) -> str | None:
    """A hash of the file's first line (at most FINGERPRINT_BYTES), or None while the
    file is too short to tell: its first line is not complete yet."""
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.blake2b(head, digest_size=8).hexdigest()


def tail_hash(fd: int, offset: int) -> str | None:
    """A hash of the (at most TAIL_BYTES) bytes before `offset`; None at offset 0
    or when the file is shorter than `offset`."""
    if offset <= 0:
        return None
    start = max(0, offset - TAIL_BYTES)
    data = os.pread(fd, offset - start, start)
    if len(data) != offset - start:
        return None
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def open_regular(path: str, root: str | None = None) -> int | None:
    """A read-only descriptor on `path` if it is a regular file reached without a symlink, else None.

    O_NOFOLLOW refuses a symlink as the last component, O_NONBLOCK keeps a FIFO swapped
    in under a watched name from blocking the open (no writer needed), and the type is
    checked on the descriptor itself, so a swap after any check cannot slip through.
    O_NOFOLLOW guards the last component only: with `root`, every directory below it
    is opened in turn with O_NOFOLLOW too, so a directory swapped for a symlink (to
    /etc, say) is refused as well. `root` itself is resolved as any path."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        if root is None:
            fd = os.open(path, flags)
        else:
            rel = os.path.relpath(path, root).split(os.sep)
            if os.pardir in rel:
                return None
            fd = _open_beneath(root, rel, flags)
    except OSError:
        return None
    try:
        if stat_mod.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _open_beneath(root: str, rel: list[str], flags: int) -> int:
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in rel[:-1]:
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
            os.close(directory)
            directory = inner
        return os.open(rel[-1], flags, dir_fd=directory)
    finally:
        os.close(directory)


class TailedFile:
    def __init__(self, path: str, fd: int, st: os.stat_result, fp: str, offset: int, max_line_bytes: int):
        self.path = path
        self.fd = fd
        self.key = file_key(st)
        self._fingerprint: str | None = fp  # None after a truncation, until a first line is complete again
        self.max_line_bytes = max_line_bytes
        self.offset = offset        # next byte to read
        self._confirmed = offset    # everything before this is confirmed by the broker
        self.size = st.st_size
        self.pending = b""          # a partial last line, read but not yet complete
        self.skipping = False       # inside an over-long line, discarding up to its newline
        self.orphaned = False       # no watched path points at this file any more (rotated or deleted)
        self.last_growth = time.monotonic()
        self.identity = file_identity(self.key, fp)  # coverage's name for this content (file_identity)
        self.names = [path]         # the names it was read under, current last

    def renamed(self, path: str) -> None:
        """A watched name now points at this file (rotated by rename): same content, same offsets."""
        if path != self.path:
            self.path = path
            if path in self.names:
                self.names.remove(path)
            self.names.append(path)
            del self.names[:-8]

    @classmethod
    def open(cls, path: str, max_line_bytes: int, real: str | None = None,
             root: str | None = None) -> TailedFile | None:
        """Open `path` (read from `real` when it is a followed symlink's target) if it is a regular
        file with a complete first line; else None (try later). See `open_regular` for `root`."""
        fd = open_regular(real or path, root)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            fp = fingerprint(fd)
        except OSError:
            fp = None
        if fp is None:
            os.close(fd)
            return None
        return cls(path, fd, st, fp, 0, max_line_bytes)

    @property
    def fingerprint(self) -> str | None:
        return self._fingerprint

    @property
    def confirmed(self) -> int:
        return self._confirmed

    # -- the offsets: they change only here ------------------------------------------

    def resume(self, offset: int) -> None:
        """Start reading at `offset`, which is confirmed already (a saved offset, a copy's, the end)."""
        self.seek(offset)
        self._confirmed = offset

    def confirm(self, end: int) -> bool:
        """The broker confirmed a batch holding this file's lines up to `end`: the one way the
        confirmed offset advances. False, changing nothing, when `end` is not past it or the
        file has no fingerprint (its content changed since those lines were read)."""
        if end <= self._confirmed or self._fingerprint is None:
            return False
        self._confirmed = end
        return True

    def restart(self) -> None:
        """Read the file from 0 as the new content it now holds (it was truncated): none of it
        is confirmed, and its fingerprint is its new first line's (None until one is complete)."""
        self.seek(0)
        self._confirmed = 0
        self.size = self.stat().st_size
        self._fingerprint = self.current_fingerprint()
        if self._fingerprint is not None:
            self.identity = file_identity(self.key, self._fingerprint)

    def identified(self) -> bool:
        """True when the content has a fingerprint; after a restart, the first call that finds a
        complete first line takes it (records need it for their ids)."""
        if self._fingerprint is None:
            self._fingerprint = self.current_fingerprint()
            if self._fingerprint is not None:
                self.identity = file_identity(self.key, self._fingerprint)
        return self._fingerprint is not None

    def rewind(self) -> None:
        """Forget what was read past the confirmed offset: it is read again."""
        self.seek(self._confirmed)

    def reconfigure(self, max_line_bytes: int) -> None:
        """Read again from the confirmed offset, cutting lines at a new limit."""
        self.max_line_bytes = max_line_bytes
        self.rewind()

    def seek(self, offset: int) -> None:
        """Continue reading at `offset`, dropping anything read past it."""
        self.offset = offset
        self.pending = b""
        self.skipping = False

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def shrunk(self) -> bool:
        """True when the file is now shorter than what we read: it was truncated."""
        return os.fstat(self.fd).st_size < self.offset

    def current_fingerprint(self) -> str | None:
        """The fingerprint of what the file holds now (it differs after a truncation)."""
        return fingerprint(self.fd)

    def tail_hash(self, offset: int) -> str | None:
        return tail_hash(self.fd, offset)

    def read_lines(self, max_bytes: int = READ_CHUNK) -> list[Line]:
        """The complete lines available now, up to about `max_bytes` of new data."""
        chunk = os.pread(self.fd, max_bytes, self.offset)
        if not chunk:
            return []
        self.last_growth = time.monotonic()
        base = self.offset - len(self.pending)
        self.offset += len(chunk)
        if self.offset > self.size:
            self.size = self.offset
        if self.skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return []
            self.skipping = False
            base += newline + 1
            chunk = chunk[newline + 1:]
        data = self.pending + chunk if self.pending else chunk
        parts = data.split(b"\n")
        self.pending = parts.pop()
        lines = []
        pos = base
        limit = self.max_line_bytes
        for raw in parts:
            end = pos + len(raw) + 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if len(raw) > limit:
                lines.append(Line(pos, end, raw[:limit], True))
            else:
                lines.append(Line(pos, end, raw, False))
            pos = end
        if len(self.pending) > limit:
            # Ship the head of an over-long line now and drop the rest as it arrives,
            # so one huge line neither blocks the file nor grows memory. Its `end` stays
            # at its start: after a restart it is read again and gets the same id.
            lines.append(Line(pos, pos, self.pending[:limit], True))
            self.pending = b""
            self.skipping = True
        return lines

    def take_partial(self) -> Line | None:
        """The held partial last line, as a line of its own (the file will not grow any more)."""
        if not self.pending or self.skipping:
            return None
        start = self.offset - len(self.pending)
        raw, self.pending = self.pending, b""
        return Line(start, self.offset, raw[: self.max_line_bytes], len(raw) > self.max_line_bytes)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
