"""`opslog import PATH...`: back-fill old log files once, as the shipper would have shipped them.

Each file is read to its end with the shipper's own reader (`TailedFile`),
multiline joiner and parsers, so every line gets the id the shipper gives it:
a hash of (host, fingerprint of the first line, byte offset, raw bytes). A
line that the shipper already sent, or that an earlier import sent, is
therefore stored once. A compressed rotation (`app.log.2.gz`) is decompressed
to a temporary file first: it holds the same bytes as the file the shipper
tailed, so it has the same fingerprint and offsets, hence the same ids.

Batches are published with confirms, one at a time; a broker failure retries
the same batch after reconnecting (to any broker of `amqp.url`), so a batch is
never skipped and at worst sent twice. An interrupted import is simply run
again. Nothing is kept on disk: the import has no offsets of its own.

Limits: the host name must be the one the shipper used (`--host` when the
files come from another machine); a multiline event that the shipper closed by
`flush_timeout` (the writer paused mid-event) is joined differently here and
may be stored a second time under another id.
"""

from __future__ import annotations

import errno
import fnmatch
import gzip
import logging
import os
import shutil
import stat as stat_mod
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential, wait_random

from common.amqp import Publisher
from common.config import Config, InputConfig
from common.errors import BrokerUnavailable, OpslogError
from common.record import BatchBuilder
from common.rotation import rotated_name
from shipper.container import container_frames
from shipper.discovery import excluded
from shipper.multiline import Multiline
from shipper.parsers import build_parser
from shipper.records import RECORD_OVERHEAD, Row, record_app, record_maker
from shipper.tailer import Line, TailedFile, open_regular

log = logging.getLogger(__name__)



class BackfillError(OpslogError):
    """The files cannot be imported as asked; `problems` names each one."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class _Stopped(Exception):
    """Stop requested while a batch was unconfirmed: it is not counted, a re-run sends it."""


@dataclass(frozen=True)
class ImportFile:
    path: str
    input: InputConfig
    size: int  # bytes to read: uncompressed (as gzip records it) for a .gz file
    real: str = ""  # where to read it, when `path` is a symlink its input follows

    @property
    def compressed(self) -> bool:
        return self.path.endswith(".gz")


def plan(config: Config, paths: list[str], app: str | None = None, fmt: str | None = None) -> list[ImportFile]:
    """The files to import, each with the input that says how to parse it.

    With `app`, every file is read as that app in `fmt` (default plain).
    Otherwise each file takes the first shipper input whose globs match its
    path, with a rotation suffix (`.1`, `-20240131`, `.gz`) removed if need be.
    Raises BackfillError naming every file that cannot be imported.

    The shipper's rules hold (shipper.discovery): a symlink is taken only when its
    input says `follow_symlinks` and its real path takes the same input, only
    regular files are read, and a file named twice (hard links) is imported once."""
    problems: list[str] = []
    files: list[ImportFile] = []
    seen: dict[tuple[int, int], str] = {}
    for given in paths:
        path = os.path.abspath(given)
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if app is not None:
            inp: InputConfig | None = InputConfig(paths=(path,), app=app, format=fmt or "plain")
        else:
            inp = input_for(config, path)
        real = ""
        if st is not None and stat_mod.S_ISLNK(st.st_mode):
            real = os.path.realpath(path)
            if inp is None or not inp.follow_symlinks or input_for(config, real) is not inp:
                problems.append(f"{given}: a symlink, and no input with follow_symlinks matches both it and "
                                f"its target {real}; name the target itself")
                continue
            try:
                st = os.lstat(real)
            except OSError:
                st = None
        if st is None or not stat_mod.S_ISREG(st.st_mode):
            problems.append(f"{given}: not a readable regular file")
            continue
        if inp is None:
            problems.append(f"{given}: no shipper input of the config matches it; name one with --app "
                            "(and --format)")
            continue
        if (st.st_dev, st.st_ino) in seen:
            log.info("%s is the same file as %s: imported once", given, seen[st.st_dev, st.st_ino])
            continue
        seen[st.st_dev, st.st_ino] = given
        try:
            size = _gzip_size(real or path) if path.endswith(".gz") else st.st_size
        except OSError as exc:
            problems.append(f"{given}: cannot read: {exc.strerror or exc}")
            continue
        files.append(ImportFile(path, inp, size, real))
    if problems:
        raise BackfillError(problems)
    return files


def input_for(config: Config, path: str) -> InputConfig | None:
    """The first shipper input whose globs match `path`, or its name without a rotation suffix."""
    name = rotated_name(path)
    unrotated = name.base if name.compression in ("", ".gz") else path  # gzip is all `_readable` undoes
    for inp in config.shipper.inputs:
        for candidate in dict.fromkeys((path, unrotated)):
            if any(fnmatch.fnmatch(candidate, os.path.abspath(os.path.expanduser(p))) for p in inp.paths) and \
                    not excluded(inp, candidate):
                return inp
    return None


def _gzip_size(path: str) -> int:
    """The uncompressed size gzip records in its trailer (modulo 4 GiB): good enough for an ETA."""
    with _open_regular(path) as fh:
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


def _open_regular(path: str) -> BinaryIO:
    """`path` opened as the tailer opens files: no symlink, no FIFO (which would block)."""
    fd = open_regular(path)
    if fd is None:
        raise OSError(errno.EINVAL, "not a regular file (or a symlink)", path)
    return os.fdopen(fd, "rb")


@contextmanager
def _readable(file: ImportFile, workdir: str) -> Iterator[str]:
    """A plain file with the content of `file`: itself, or its decompressed copy."""
    if not file.compressed:
        yield file.real or file.path
        return
    fd, temp = tempfile.mkstemp(prefix="opslog-import-", dir=workdir)
    try:
        with _open_regular(file.real or file.path) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as src, \
                os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield temp
    finally:
        os.unlink(temp)


class Progress:
    """One status line on stderr: a bar, records, rate and ETA.

    On a terminal it is redrawn in place (`\\r`) a few times a second; into a
    file or pipe a full line is written every `log_interval` seconds instead.
    The ETA comes from bytes read, since line counts are unknown until read."""

    BAR = 24

    def __init__(self, total_bytes: int, stream: TextIO, tty: bool | None = None,
                 interval: float = 0.2, log_interval: float = 10.0):
        self.total = max(total_bytes, 1)
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.interval = interval if self.tty else log_interval
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    def line(self, records: int, done_bytes: int, name: str, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        fraction = min(done_bytes / self.total, 1.0)
        filled = int(fraction * self.BAR)
        rate = records / elapsed
        byte_rate = done_bytes / elapsed
        eta = "--:--" if byte_rate <= 0 else _clock((self.total - done_bytes) / byte_rate)
        return (f"[{'#' * filled}{'.' * (self.BAR - filled)}] {fraction:4.0%}  {records:,} records  "
                f"{rate:,.0f}/s  ETA {eta}  {name}")

    def update(self, records: int, done_bytes: int, name: str) -> None:
        now = time.monotonic()
        if now - self._drawn_at < self.interval:
            return
        self._drawn_at = now
        self._draw(self.line(records, done_bytes, name, now))

    def finish(self, text: str) -> None:
        self._draw(text, final=True)

    def _draw(self, text: str, final: bool = False) -> None:
        if self.tty:
            pad = " " * max(0, self._width - len(text))
            self.stream.write(f"\r{text}{pad}" + ("\n" if final else ""))
            self._width = 0 if final else len(text) + len(pad)  # what the terminal line now shows
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


@dataclass
class ImportResult:
    files: int = 0
    records: int = 0
    bytes: int = 0
    skipped: int = 0  # files without a complete first line: the shipper would not ship them either
    seconds: float = 0.0
    interrupted: bool = False


class Importer:
    def __init__(self, config: Config, publisher: Publisher, host: str | None = None,
                 progress: Progress | None = None):
        self.shipper_config = config.shipper
        self.host = host or self.shipper_config.host
        self.publisher = publisher
        self.progress = progress
        self.stopping = threading.Event()
        self.result = ImportResult()
        self._batch = BatchBuilder()
        self._batch_bytes = 0
        self._base_bytes = 0  # bytes of the files finished before the current one

    def stop(self) -> None:
        self.stopping.set()

    def run(self, files: list[ImportFile]) -> ImportResult:
        began = time.monotonic()
        workdir = tempfile.mkdtemp(prefix="opslog-import-")
        try:
            for file in files:
                if self.stopping.is_set():
                    break
                with _readable(file, workdir) as readable:
                    self._import(file, readable)
                self._base_bytes += file.size
            if not self.stopping.is_set():
                self._publish()
        except _Stopped:
            pass
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self.publisher.close()
        self.result.interrupted = self.stopping.is_set()
        self.result.seconds = time.monotonic() - began
        return self.result

    def _import(self, file: ImportFile, readable: str) -> None:
        inp = file.input
        tailed = TailedFile.open(readable, inp.max_line_bytes)
        if tailed is None or tailed.fingerprint is None:
            log.warning("%s has no complete first line: skipped (the shipper would wait for one too)", file.path)
            self.result.skipped += 1
            return
        multiline = Multiline(inp) if inp.multiline else None
        frames = container_frames(inp, file.path)
        make = record_maker(self.host, tailed.fingerprint, inp, build_parser(inp), frames)
        app = record_app(inp, frames)
        name = os.path.basename(file.path)
        try:
            while not self.stopping.is_set():
                lines = tailed.read_lines()
                if not lines:
                    break
                if frames:
                    lines = frames.feed(lines)
                self._add(file, make, app, multiline.feed(lines) if multiline else lines)
                if self.progress:
                    self.progress.update(self.result.records + len(self._batch),
                                         self._base_bytes + tailed.offset, name)
            if self.stopping.is_set():
                raise _Stopped
            tail = [partial] if (partial := tailed.take_partial()) is not None else []
            if frames:
                tail = frames.feed(tail) + frames.flush()
            if multiline:
                tail = multiline.feed(tail) + multiline.flush()
            self._add(file, make, app, tail)
            self.result.bytes += tailed.offset
        finally:
            tailed.close()
        self.result.files += 1

    def _add(self, file: ImportFile, make: Callable[[Line], Row], app: str, lines: list[Line]) -> None:
        """Records for `lines`, made as the shipper makes them (shipper.records: same ids, same fields)."""
        if not lines:
            return
        now = time.time()
        max_records, max_bytes = self.shipper_config.batch_max_records, self.shipper_config.batch_max_bytes
        rows = self._batch.group(self.host, app, file.path, now)
        for line in lines:
            rows.append(make(line))
            self._batch_bytes += len(line.raw) + RECORD_OVERHEAD
            if len(self._batch) >= max_records or self._batch_bytes >= max_bytes:
                self._publish()
                rows = self._batch.group(self.host, app, file.path, now)

    def _publish(self) -> None:
        if not self._batch:
            return
        body = self._batch.encode()
        headers = {"x-opslog-records": len(self._batch), "x-opslog-host": self.host, "x-opslog-import": True}
        retrying = Retrying(
            retry=retry_if_exception_type(BrokerUnavailable),
            wait=wait_exponential(multiplier=0.5, max=30) + wait_random(0, 1),  # (see shipper.sender)
            stop=stop_when_event_set(self.stopping),
            sleep=self.stopping.wait,
            before_sleep=lambda rs: log.warning("broker unavailable (%s); retrying the batch in %.1fs",
                                                rs.outcome.exception(), rs.upcoming_sleep),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.publisher.publish(body, headers=headers)
        except BrokerUnavailable:
            if self.stopping.is_set():
                raise _Stopped from None
            raise
        self.result.records += len(self._batch)
        self._batch = BatchBuilder()
        self._batch_bytes = 0


def summary(result: ImportResult) -> str:
    rate = result.records / result.seconds if result.seconds > 0 else 0.0
    text = (f"imported {result.records:,} records from {result.files} file(s), {result.bytes / 1e6:,.1f} MB, "
            f"in {result.seconds:.1f}s ({rate:,.0f} records/s)")
    if result.skipped:
        text += f"; skipped {result.skipped} file(s) without a complete first line"
    if result.interrupted:
        text += ("; INTERRUPTED: run the same command again to finish (records already stored are not "
                 "stored twice)")
    return text

