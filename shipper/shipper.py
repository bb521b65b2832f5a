"""The shipper's loop: discover files, read lines, batch records, publish, confirm.

Single-threaded on purpose: one loop owns the files, the batch and the broker
connection, so there are no locks and backpressure is free. While a publish
waits for its confirm, nothing else is read; while the broker is down, nothing
is read at all and the lines wait in the files. Memory holds one batch.

Offsets move only after the broker confirmed the batch that holds the lines
(`TailedFile.confirmed`). On any broker failure every file is rewound to its
confirmed offset and read again after reconnecting; the record ids are
deterministic, so a line published twice is stored once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential_jitter

from common.amqp import Publisher
from common.config import Config, InputConfig
from common.errors import BrokerUnavailable
from common.record import Record, encode_batch, record_id
from shipper.metrics import ShipperMetrics
from shipper.multiline import Multiline
from shipper.parsers import build_parser
from shipper.registry import Registry
from shipper.tailer import Line, TailedFile, file_key
from shipper.watcher import matching_files

log = logging.getLogger(__name__)

IDLE_SLEEP = 0.05
REGISTRY_SAVE_INTERVAL = 1.0
ROTATED_GRACE = 5.0  # keep reading a renamed/deleted file this long after its last growth
RECORD_OVERHEAD = 160  # approximate JSON bytes per record besides the message


@dataclass
class Input:
    cfg: InputConfig
    parse: object = field(init=False)

    def __post_init__(self) -> None:
        self.parse = build_parser(self.cfg)


@dataclass
class Tracked:
    file: TailedFile
    input: Input
    multiline: Multiline | None = None


class Shipper:
    def __init__(self, config: Config, publisher: Publisher, metrics: ShipperMetrics | None = None):
        self.cfg = config.shipper
        self.publisher = publisher
        self.metrics = metrics or ShipperMetrics()
        self.registry = Registry(self.cfg.state_dir)
        self.inputs = [Input(i) for i in self.cfg.inputs]
        self.files: dict[str, Tracked] = {}
        self.batch: list[Record] = []
        self.batch_bytes = 0
        self.batch_started = 0.0
        self.batch_ends: dict[str, tuple[Tracked, int]] = {}
        self.stopping = threading.Event()
        self._warned_cap = False

    # -- lifecycle ---------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        self.registry.load()
        first_start = not self.registry.existed
        self.metrics.watch_backlog(self._bytes_behind)
        self._connect()
        self._scan(first_start)
        next_scan = time.monotonic() + self.cfg.scan_interval
        while not self.stopping.is_set():
            if time.monotonic() >= next_scan:
                self._scan(False)
                next_scan = time.monotonic() + self.cfg.scan_interval
            read = self._read_all()
            if self.batch and (not read or time.monotonic() - self.batch_started >= self.cfg.batch_max_wait):
                self._flush()
            if not read:
                self._flush_multiline(force=False)
                self.registry.save(REGISTRY_SAVE_INTERVAL)  # a throttled save still lands when idle
                self._idle(IDLE_SLEEP)
        self._shutdown()

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.cfg.shutdown_timeout
        try:
            self._flush_multiline(force=False)
            if self.batch and time.monotonic() < deadline:
                self._publish_batch()
        except BrokerUnavailable as exc:
            log.warning("could not publish the last batch on shutdown (%s); it is read again at next start", exc)
        self.registry.save()
        for tracked in self.files.values():
            tracked.file.close()
        self.files.clear()
        self.publisher.close()
        log.info("shipper stopped; offsets saved")

    def _idle(self, seconds: float) -> None:
        try:
            self.publisher.sleep(seconds)
        except BrokerUnavailable as exc:
            self._recover(exc)

    def _connect(self) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(BrokerUnavailable),
            wait=wait_exponential_jitter(initial=0.5, max=30, jitter=1),
            stop=stop_when_event_set(self.stopping),
            sleep=self.stopping.wait,
            before_sleep=lambda rs: log.warning("broker unavailable (%s); retrying in %.1fs",
                                                rs.outcome.exception(), rs.upcoming_sleep),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.publisher.connect()
        except BrokerUnavailable:
            if not self.stopping.is_set():
                raise

    def _recover(self, exc: Exception) -> None:
        """Drop everything unconfirmed, rewind each file to its confirmed offset, reconnect."""
        log.warning("broker failure (%s): rewinding to confirmed offsets and reconnecting", exc)
        self.metrics.reconnects.inc()
        self._clear_batch()
        for tracked in self.files.values():
            tracked.file.rewind()
            if tracked.multiline:
                tracked.multiline.reset()
        self.publisher.close()
        self._connect()

    # -- files -------------------------------------------------------------------

    def _scan(self, first_start: bool) -> None:
        """Open new files, follow renames, notice truncation, release finished files."""
        now = time.time()
        for inp in self.inputs:
            for path in matching_files(inp.cfg):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                tracked = self.files.get(file_key(st))
                if tracked is not None:
                    tracked.file.path = path  # renamed to another watched name: same file, same offsets
                    continue
                if inp.cfg.ignore_older and now - st.st_mtime > inp.cfg.ignore_older and \
                        self.registry.get(file_key(st)) is None:
                    continue
                self._open(path, inp, first_start)
        for key, tracked in list(self.files.items()):
            self._check(key, tracked)

    def _open(self, path: str, inp: Input, first_start: bool) -> None:
        if len(self.files) >= self.cfg.max_open_files:
            if not self._warned_cap:
                log.warning("max_open_files (%d) reached; %s waits until a file is released",
                            self.cfg.max_open_files, path)
                self._warned_cap = True
            return
        file = TailedFile.open(path, inp.cfg.max_line_bytes)
        if file is None or file.key in self.files:
            if file is not None:
                file.close()
            return
        entry = self.registry.get(file.key)
        if entry is not None and entry.fingerprint == file.fingerprint:
            start = entry.offset
            if start > file.size:
                log.warning("%s is shorter (%d bytes) than its saved offset %d: truncated while we were "
                            "away; reading it from the start", path, file.size, start)
                start = 0
        elif entry is not None:
            log.info("%s reuses the inode of %s with new content: reading it from the start", path, entry.path)
            start = 0
        elif first_start and inp.cfg.start_at == "end":
            start = file.size
        else:
            start = 0
        file.seek(start)
        file.confirmed = start
        self.files[file.key] = Tracked(file, inp, Multiline(inp.cfg) if inp.cfg.multiline else None)
        log.info("tailing %s from offset %d", path, start)

    def _check(self, key: str, tracked: Tracked) -> None:
        file = tracked.file
        try:
            st = file.stat()
            at_path = os.stat(file.path)
        except FileNotFoundError:
            at_path = None
        if at_path is None or file_key(at_path) != key:
            file.orphaned = True
        if st.st_size < file.offset:
            if self.batch:
                self._flush()
            log.warning("%s was truncated from %d to %d bytes: reading it from the start; lines written "
                        "after our last read and before the truncation are lost", file.path, file.offset,
                        st.st_size)
            file.seek(0)
            file.confirmed = 0
            if tracked.multiline:
                tracked.multiline.reset()
        file.size = st.st_size
        idle = time.monotonic() - file.last_growth
        at_end = file.offset >= st.st_size
        if file.orphaned and at_end and idle >= ROTATED_GRACE:
            self._release(key, tracked, forget=st.st_nlink == 0)
        elif not file.orphaned and at_end and idle >= tracked.input.cfg.close_inactive and not file.pending:
            self._release(key, tracked, forget=False)

    def _release(self, key: str, tracked: Tracked, forget: bool) -> None:
        """Close a file that is finished: ship its held partial line and pending event first."""
        partial = tracked.file.take_partial()
        if partial is not None:
            self._add(tracked, [partial])
        if tracked.multiline:
            self._add_records(tracked, tracked.multiline.flush())
        if self.batch:
            self._flush()
        if key not in self.files:  # a failed flush rewound everything; try again next scan
            return
        log.info("released %s at offset %d%s", tracked.file.path, tracked.file.confirmed,
                 " (deleted)" if forget else "")
        tracked.file.close()
        del self.files[key]
        self._warned_cap = False
        if forget:
            self.registry.forget(key)

    def _bytes_behind(self) -> dict[str, int]:
        return {t.file.path: max(0, t.file.size - t.file.confirmed) for t in list(self.files.values())}

    # -- records and batches -----------------------------------------------------

    def _read_all(self) -> int:
        total = 0
        for tracked in list(self.files.values()):
            lines = tracked.file.read_lines()
            if lines:
                total += len(lines)
                self.metrics.lines_read.inc(len(lines))
                self._add(tracked, lines)
        return total

    def _add(self, tracked: Tracked, lines: list[Line]) -> None:
        if tracked.multiline is not None:
            self._add_records(tracked, tracked.multiline.feed(lines))
            return
        self._add_records(tracked, lines)

    def _add_records(self, tracked: Tracked, lines: list[Line]) -> None:
        if not lines:
            return
        file, inp = tracked.file, tracked.input
        host, app, path, fp = self.cfg.host, inp.cfg.app, file.path, file.fingerprint
        encoding, parse = inp.cfg.encoding, inp.parse
        now = time.time()
        if not self.batch:
            self.batch_started = time.monotonic()
        batch = self.batch
        parse_errors = 0
        for line in lines:
            message = line.raw.decode(encoding, "replace")
            parsed = parse(message)  # type: ignore[operator]
            error = parsed.error
            if line.truncated:
                error = f"line longer than max_line_bytes ({inp.cfg.max_line_bytes}); truncated" + (
                    f"; {error}" if error else "")
            if error:
                parse_errors += 1
            batch.append(Record(record_id(host, fp, line.offset, line.raw), host, app, path, line.offset,
                                message, now, parsed.ts, parsed.level, parsed.fields, error))
            self.batch_bytes += len(line.raw) + RECORD_OVERHEAD
            self.batch_ends[file.key] = (tracked, line.end)
            if len(batch) >= self.cfg.batch_max_records or self.batch_bytes >= self.cfg.batch_max_bytes:
                self._flush()
                batch = self.batch
                if not batch:
                    self.batch_started = time.monotonic()
        if parse_errors:
            self.metrics.parse_errors.inc(parse_errors)

    def _flush_multiline(self, force: bool) -> None:
        for tracked in list(self.files.values()):
            if tracked.multiline is not None:
                self._add_records(tracked, tracked.multiline.flush() if force else tracked.multiline.expired())

    def _flush(self) -> None:
        try:
            self._publish_batch()
        except BrokerUnavailable as exc:
            self._recover(exc)

    def _publish_batch(self) -> None:
        if not self.batch:
            return
        body = encode_batch(self.batch)
        self.publisher.publish(body, headers={"x-opslog-records": len(self.batch), "x-opslog-host": self.cfg.host})
        self.metrics.records_published.inc(len(self.batch))
        self.metrics.batches_published.inc()
        for key, (tracked, end) in self.batch_ends.items():
            file = tracked.file
            file.confirmed = max(file.confirmed, end)
            self.registry.confirm(key, file.path, file.fingerprint, file.confirmed)
        self._clear_batch()
        self.registry.save(REGISTRY_SAVE_INTERVAL)

    def _clear_batch(self) -> None:
        self.batch = []
        self.batch_bytes = 0
        self.batch_ends = {}
