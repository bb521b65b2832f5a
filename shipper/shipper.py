"""The shipper's loop: discover files, read lines, batch records, hand batches to the sender.

One loop owns the files, the registry and the batch being filled; the sender
(shipper.sender) owns the broker connections and publishes finished batches
with publisher confirms on threads of its own, several at once, so parsing
the next batch overlaps waiting for the broker's confirms. Memory holds the batch being filled and
at most `max_buffer_bytes` of batches waiting for their confirm; when those
wait (broker slow, blocked, down), the loop stops reading and the lines wait
in the files.

Offsets move only after the broker confirmed the batch that holds the lines
(`_apply_confirmed` -> `Files.confirm` -> `TailedFile.confirm`, the one
guard). When the sender fails, every unconfirmed batch is gone: each file
is rewound to its confirmed offset and read again once the sender is
connected again; the record ids are deterministic, so a line published twice
is stored once.

Journal inputs (`type: journald`, shipper.journals) are read the same way:
their readers fill bounded buffers on threads of their own, the loop takes
what is there (`_read_journals`, never waiting), and a journal's cursor moves
only in `_apply_confirmed`; `_rewind` restarts each journalctl after it.

Before a file is restarted (truncation) or released (rotated away, deleted,
idle), what is pending for it is shipped and every batch confirmed, so its
confirmed offset is exact when its state changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.amqp import Publisher
from common.config import Config, ShipperConfig
from common.record import BatchBuilder
from common.record.heartbeats import KIND, KIND_HEADER
from shipper.files import Files, Finding, Input, Tracked
from shipper.heartbeats import Heartbeats
from shipper.journal_entry import Entry
from shipper.journals import JournalInput, Journals
from shipper.metrics import ShipperMetrics
from shipper.records import PARSE_ERROR, RECORD_OVERHEAD, covered_bytes, record_app, record_maker
from shipper.registry import Registry
from shipper.reload import reloaded_config
from shipper.sender import Batch, Sender
from shipper.tailer import Line
from shipper.watcher import Watcher, make_watcher

log = logging.getLogger(__name__)

IDLE_SLEEP = 0.05
REGISTRY_SAVE_INTERVAL = 1.0
DRAIN_POLL = 0.2


class Shipper:
    def __init__(self, config: Config, publisher: Publisher, metrics: ShipperMetrics | None = None):
        self.config = config  # the whole config; its `shipper` section is the one reloaded by SIGHUP
        shipper_config = config.shipper
        self.metrics = metrics or ShipperMetrics()
        self.registry = Registry(shipper_config.state_dir)
        self.files = Files(shipper_config, self.registry,
                           [Input(i) for i in shipper_config.inputs if i.type == "file"])
        self.journals = Journals(shipper_config, self.registry, self.metrics)  # type: journald (shipper.journals)
        self.sender = Sender(publisher, shipper_config.max_buffer_bytes, shipper_config.reconnect_max_wait)
        self.watcher: Watcher | None = None
        self.heartbeats = Heartbeats(shipper_config.host, shipper_config.heartbeat_interval)
        self.batch = BatchBuilder()  # the payload being filled
        self.batch_bytes = 0
        self.batch_started = 0.0
        self.batch_ends: dict[str, tuple[Tracked, int]] = {}
        self.journal_ends: dict[str, tuple[JournalInput, int, str]] = {}  # key -> (input, seqnum, cursor)
        self.stopping = threading.Event()
        self._reload_requested = threading.Event()

    @property
    def shipper_config(self) -> ShipperConfig:
        """The `shipper` section of the running config."""
        return self.config.shipper

    # -- lifecycle ---------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    def request_reload(self) -> None:
        """Re-read the config file at the next turn of the loop (SIGHUP, shipper.reload)."""
        self._reload_requested.set()

    def run(self) -> None:
        self.registry.load()
        first_start = not self.registry.existed
        self.metrics.watch(self.files.bytes_behind, lambda: len(self.files.tracked), lambda: self.sender.held_bytes)
        self.watcher = self._make_watcher()
        self.sender.start()
        try:
            self.journals.start(first_start)
            self._scan(first_start)
            self.watcher.scanned()
            self.registry.save()  # the registry now exists: the next start is not a first start
            while not self.stopping.is_set():
                self._turn()
        finally:
            self._shutdown()

    def _turn(self) -> None:
        """One turn of the loop: confirmations in, files checked, lines read, batches out."""
        self._apply_confirmed()
        self.sender.check()
        if self.sender.failed:
            self._recover()
            return
        assert self.watcher is not None
        if self._reload_requested.is_set() and self.sender.ready:
            self._reload()
        if self.watcher.scan_due():
            # Also while the broker is down: a file rotated away meanwhile stays open, to be read later.
            self._scan(False)
            self.watcher.scanned()
        if not self.sender.ready:
            self.stopping.wait(IDLE_SLEEP)  # broker down or connecting: read nothing
            return
        if self.heartbeats.due():
            self._send_heartbeat()
        read = self._read_all() + self._read_journals()
        if self.batch and (not read or time.monotonic() - self.batch_started >= self.shipper_config.batch_max_wait):
            self._submit()
        if not read:
            self._flush_multiline()
            self.registry.save(REGISTRY_SAVE_INTERVAL)  # a throttled save still lands when idle
            self.stopping.wait(IDLE_SLEEP)

    def _shutdown(self) -> None:
        """Ship the last batch and wait for its confirm (bounded), save offsets, let go."""
        deadline = time.monotonic() + self.shipper_config.shutdown_timeout
        self._apply_confirmed()
        if self.sender.ready and self.batch:
            self._submit(give_up=lambda: time.monotonic() > deadline)
        while self.sender.ready and not self.sender.wait_idle(min(DRAIN_POLL, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() > deadline:
                log.warning("shutdown_timeout (%gs) passed with batches unconfirmed; they are read again at "
                            "next start", self.shipper_config.shutdown_timeout)
                break
        self._apply_confirmed()
        self.registry.save()
        self.files.close()
        self.journals.close()
        self.sender.close(timeout=max(0.5, deadline - time.monotonic()))
        if self.watcher is not None:
            self.watcher.close()
        log.info("shipper stopped; offsets saved")

    def _recover(self) -> None:
        """After a broker failure: keep what was confirmed, rewind the rest, reconnect."""
        self.metrics.reconnects.inc()
        self._apply_confirmed()
        self._rewind()
        self.sender.reset()

    def _rewind(self) -> None:
        """Forget everything read but not confirmed: it is read again from the files."""
        self._clear_batch()
        for tracked in self.files.tracked.values():
            tracked.rewind()
        self.journals.rewind()

    def _make_watcher(self) -> Watcher:
        patterns = [p for inp in self.files.inputs for p in inp.input_config.paths]
        watcher = make_watcher(self.shipper_config.watch, self.shipper_config.scan_interval, patterns)
        log.info("files are noticed by %s, and a full scan every %gs", watcher.kind, self.shipper_config.scan_interval)
        return watcher

    # -- files -------------------------------------------------------------------

    def _scan(self, first_start: bool) -> None:
        for tracked, finding in self.files.scan(first_start):
            if tracked.file.key not in self.files.tracked or not self._ship_pending(tracked):
                continue
            if finding is Finding.TRUNCATED:
                self.heartbeats.ended(tracked.file, "truncated")
                self.files.restart(tracked)
            else:
                if finding is Finding.DELETED:
                    self.heartbeats.ended(tracked.file, "deleted")
                self.files.release(tracked, forget=finding is Finding.DELETED)

    def _ship_pending(self, tracked: Tracked) -> bool:
        """Ship a file's held partial line and pending event, and wait until all is confirmed.
        False if the broker cannot take them now (nothing is lost: it is all read again)."""
        if not self.sender.ready:
            return False
        partial = tracked.file.take_partial()
        lines = [partial] if partial is not None else []
        if tracked.frames:
            lines = tracked.frames.feed(lines) + tracked.frames.flush()
        if tracked.multiline:
            lines = tracked.multiline.feed(lines) + tracked.multiline.flush()
        if not self._add_records(tracked, lines):
            return False
        return self._drain()

    def _drain(self) -> bool:
        """Submit the batch and wait for every confirm; False on failure or stop."""
        if self.batch and not self._submit():
            return False
        while not self.sender.wait_idle(DRAIN_POLL):
            if self.sender.failed:
                self._recover()
                return False
            if self.stopping.is_set() or not self.sender.ready:
                return False
        self._apply_confirmed()
        return True

    # -- records and batches -----------------------------------------------------

    def _read_all(self) -> int:
        total = 0
        for tracked in list(self.files.tracked.values()):
            file = tracked.file
            if not file.identified():  # truncated: wait for a complete first line to name the new content
                continue
            lines = file.read_lines()
            if lines:
                total += len(lines)
                self.metrics.lines_read.inc(len(lines))
                if not self._add(tracked, lines):
                    break  # the broker failed: everything was rewound
            elif file.shrunk() and self._ship_pending(tracked):
                self.heartbeats.ended(tracked.file, "truncated")
                self.files.restart(tracked)
        return total

    def _add(self, tracked: Tracked, lines: list[Line]) -> bool:
        if tracked.frames is not None:
            lines = tracked.frames.feed(lines)
        if tracked.multiline is not None:
            return self._add_records(tracked, tracked.multiline.feed(lines))
        return self._add_records(tracked, lines)

    def _add_records(self, tracked: Tracked, lines: list[Line]) -> bool:
        """Turn lines into records in the batch, submitting it whenever it is full.
        The hot path: keep per-line work to what each record needs (measure any
        change). False if a submit failed (the rest of `lines` is dropped: its
        file was rewound)."""
        if not lines:
            return True
        file, frames = tracked.file, tracked.frames
        host, path = self.shipper_config.host, file.path
        assert file.fingerprint is not None
        app = record_app(tracked.input.input_config, frames)
        make = record_maker(host, file.fingerprint, tracked.input.input_config, tracked.input.parse, frames)
        max_records, max_bytes = self.shipper_config.batch_max_records, self.shipper_config.batch_max_bytes
        now = time.time()
        if not self.batch:
            self.batch_started = time.monotonic()
        identity = file.identity
        (rows, lengths), size, parse_errors = self.batch.file_group(host, app, path, now, identity), self.batch_bytes, 0
        room = max_records - len(self.batch)  # records this group can take before the batch is full
        for line in lines:
            record = make(line)
            if record[PARSE_ERROR]:
                parse_errors += 1
            rows.append(record)
            lengths.append(line.end - line.offset if not line.truncated else covered_bytes(line))
            size += len(line.raw) + RECORD_OVERHEAD
            if len(rows) >= room or size >= max_bytes:
                self.batch_bytes = size
                self.batch_ends[file.key] = (tracked, line.end)
                if not self._submit():
                    self.metrics.parse_errors.inc(parse_errors)
                    return False
                (rows, lengths), size, room = self.batch.file_group(host, app, path, now, identity), 0, max_records
                self.batch_started = time.monotonic()
        if rows:
            self.batch_ends[file.key] = (tracked, lines[-1].end)
        self.batch_bytes = size
        if parse_errors:
            self.metrics.parse_errors.inc(parse_errors)
        return True

    def _read_journals(self) -> int:
        """Take what the journal readers have read (they never block the loop)."""
        self.journals.anchor()
        total, limit = 0, self.shipper_config.batch_max_records
        for journal in self.journals.inputs:
            entries = journal.take(limit)
            if entries:
                total += len(entries)
                self.metrics.lines_read.inc(len(entries))
                if not self._add_entries(journal, entries):
                    break  # the broker failed: everything was rewound
        return total

    def _add_entries(self, journal: JournalInput, entries: list[Entry]) -> bool:
        """Journal entries into the batch, as `_add_records` does with a file's lines: one group
        per run of entries with the same app, source and journal, with the seqnums each closes."""
        host, now = self.shipper_config.host, time.time()
        max_records, max_bytes = self.shipper_config.batch_max_records, self.shipper_config.batch_max_bytes
        if not self.batch:
            self.batch_started = time.monotonic()
        rows: list[tuple[object, ...]] = []
        spans: list[int] = []
        group: tuple[str, str, str] | None = None
        size, count, parse_errors = self.batch_bytes, len(self.batch), 0
        for entry in entries:
            if (entry.app, entry.source, entry.file) != group:
                group = (entry.app, entry.source, entry.file)
                rows, spans = self.batch.file_group(host, entry.app, entry.source, now, entry.file)
            rows.append(entry.row)
            spans.append(entry.span)
            if entry.row[PARSE_ERROR]:
                parse_errors += 1
            size += entry.size
            count += 1
            self.journal_ends[journal.key] = (journal, entry.seqnum, entry.cursor)
            if count >= max_records or size >= max_bytes:
                self.batch_bytes = size
                if not self._submit():
                    self.metrics.parse_errors.inc(parse_errors)
                    return False
                group, size, count = None, 0, 0
                self.batch_started = time.monotonic()
        self.batch_bytes = size
        if parse_errors:
            self.metrics.parse_errors.inc(parse_errors)
        return True

    def _flush_multiline(self) -> None:
        """Complete the events nothing was added to for flush_timeout."""
        for tracked in list(self.files.tracked.values()):
            if tracked.multiline is not None and not self._add_records(tracked, tracked.multiline.expired()):
                return

    def _submit(self, give_up: Callable[[], bool] | None = None) -> bool:
        """Hand the batch to the sender (waiting while its buffer is full). False if it was
        not taken: the sender failed (everything is rewound here) or we are stopping."""
        if not self.batch:
            return True
        ends: dict[str, tuple[object, int, str | None]] = {
            key: (tracked, end, tracked.file.tail_hash(end)) for key, (tracked, end) in self.batch_ends.items()}
        ends.update(self.journal_ends)
        batch = Batch(self.batch.encode(), len(self.batch),
                      {"x-opslog-records": len(self.batch), "x-opslog-host": self.shipper_config.host}, ends)
        self._clear_batch()
        taken = self.sender.submit(batch, give_up or self.stopping.is_set)
        if not taken and self.sender.failed:
            self._recover()
        elif not taken and not self.stopping.is_set():
            self._rewind()  # the batch is gone: read its lines again
        return taken

    def _send_heartbeat(self) -> None:
        """Hand the files' heartbeat to the sender, unless its pipeline is full (then next turn)."""
        body = self.heartbeats.body(self.files, self.journals.heartbeat_entries())
        if body is None:
            return
        batch = Batch(body, 0, {KIND_HEADER: KIND, "x-opslog-host": self.shipper_config.host}, {})
        if self.sender.submit(batch, give_up=lambda: True):
            self.heartbeats.sent()

    def _apply_confirmed(self) -> None:
        """Advance each file's confirmed offset (and the registry) past the confirmed batches."""
        confirmed = self.sender.take_confirmed()
        if not confirmed:
            return
        for batch in confirmed:
            if not batch.records:
                continue  # a heartbeat
            self.metrics.records_published.inc(batch.records)
            self.metrics.batches_published.inc()
            for key, (owner, end, tail) in batch.ends.items():
                if isinstance(owner, JournalInput):
                    assert tail is not None
                    self.journals.confirm(owner, end, tail)
                else:
                    self.files.confirm(key, owner, end, tail)
        self.registry.save(REGISTRY_SAVE_INTERVAL)

    def _clear_batch(self) -> None:
        self.batch = BatchBuilder()
        self.batch_bytes = 0
        self.batch_ends = {}
        self.journal_ends = {}

    # -- reload --------------------------------------------------------------------

    def _reload(self) -> None:
        """Apply the config file again (SIGHUP, see shipper.reload). Offsets are kept; what is
        pending is confirmed first, so a file whose input changed is re-read from an exact
        confirmed offset with the new settings."""
        self._reload_requested.clear()
        config = reloaded_config(self.config)
        if config is None:
            return
        if not self._drain():
            self._reload_requested.set()  # try again once the broker is back
            return
        shipper_config = config.shipper
        for tracked in self.files.reconfigure(shipper_config):
            if self._ship_pending(tracked):
                self.files.release(tracked, forget=False)
        self.journals.reconfigure(shipper_config)
        self.config = config
        self.heartbeats.interval = shipper_config.heartbeat_interval
        self.sender.reconfigure(shipper_config.max_buffer_bytes, shipper_config.reconnect_max_wait)
        if self.watcher is not None:
            self.watcher.close()
        self.watcher = self._make_watcher()
        log.info("SIGHUP: reloaded %s (%d inputs)", config.path, len(self.files.inputs))
        self._scan(False)
        self.watcher.scanned()
