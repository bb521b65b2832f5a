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

Which files, and with which input, is shipper.import_plan; the status line is
shipper.progress; records are made by shipper.records, as the shipper makes them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.amqp import Publisher
from common.config import Config
from common.errors import BrokerUnavailable
from common.record import BatchBuilder
from common.retry import GAVE_UP, Backoff, retry
from shipper.container import container_frames
from shipper.import_plan import BackfillError, ImportFile, input_for, plan, readable
from shipper.multiline import Multiline
from shipper.parsers import build_parser
from shipper.progress import Progress
from shipper.records import RECORD_OVERHEAD, Row, covered_bytes, record_app, record_maker
from shipper.tailer import Line, TailedFile

# the command's whole interface, wherever each part lives (common.cli, the tests)
__all__ = ["BackfillError", "ImportFile", "ImportResult", "Importer", "Progress", "input_for", "plan", "summary"]

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """Stop requested while a batch was unconfirmed: it is not counted, a re-run sends it."""


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
                with readable(file, workdir) as path:
                    self._import(file, path)
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
                self._add(file, make, app, multiline.feed(lines) if multiline else lines, tailed.identity)
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
            self._add(file, make, app, tail, tailed.identity)
            self.result.bytes += tailed.offset
        finally:
            tailed.close()
        self.result.files += 1

    def _add(self, file: ImportFile, make: Callable[[Line], Row], app: str, lines: list[Line], identity: str) -> None:
        """Records for `lines`, made as the shipper makes them (shipper.records: same ids, same fields),
        with their file identity and lengths for coverage (an imported file is a history of its own)."""
        if not lines:
            return
        now = time.time()
        max_records, max_bytes = self.shipper_config.batch_max_records, self.shipper_config.batch_max_bytes
        rows, lengths = self._batch.file_group(self.host, app, file.path, now, identity)
        for line in lines:
            rows.append(make(line))
            lengths.append(line.end - line.offset if not line.truncated else covered_bytes(line))
            self._batch_bytes += len(line.raw) + RECORD_OVERHEAD
            if len(self._batch) >= max_records or self._batch_bytes >= max_bytes:
                self._publish()
                rows, lengths = self._batch.file_group(self.host, app, file.path, now, identity)

    def _publish(self) -> None:
        if not self._batch:
            return
        body = self._batch.encode()
        headers = {"x-opslog-records": len(self._batch), "x-opslog-host": self.host, "x-opslog-import": True}
        sent = retry(lambda: self.publisher.publish(body, headers=headers), on=BrokerUnavailable, what="broker",
                     backoff=Backoff(initial=0.5, maximum=30.0, jitter=1.0), give_up=self.stopping.is_set,
                     sleep=self.stopping.wait)
        if sent is GAVE_UP:
            raise _Stopped
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
