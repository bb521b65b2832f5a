"""Reading the systemd journal: one `journalctl --follow` process per journald input.

Why journalctl and not a binding. `journalctl -o json --all --follow` is what
Vector's journald source runs. Of the bindings, `systemd-python` has no wheel
(building it needs libsystemd-dev and a compiler, absent on a plain host), and
`cysystemd` has a wheel (2.0.5, manylinux_2_34) that installs here. We still
chose the subprocess:

- isolation: a corrupt journal file, a bug in libsystemd or a blocking
  `sd_journal_wait` stays in a process we restart (with backoff), never in the
  shipper's loop, which keeps reading its files meanwhile;
- what the host has: journalctl comes with systemd, its version matches the
  journal files it reads (new compression or keyed-hash formats), no C
  extension to build per Python version;
- the cost, measured: journalctl's JSON is the input's bound. On this 2-core
  machine it wrote ~100,000 entries/s of 8 fields, and spends ~21 µs of CPU
  on an entry of ~20 fields (~1 KiB of JSON; `-o export` of the same entry
  ~5 µs); orjson reads one in ~5 µs. A binding would save the JSON both ways
  but run libsystemd inside the shipper and build a Python object per field
  (bench `journald`: journalctl alone, through the shipper, and json files).

`--no-tail` is always passed: with `--follow` journalctl otherwise prints at
most 10 entries after its start position and the rest of what is there only
once the journal changes again. `--show-cursor` is not passed: with `-o json` every entry carries its
`__CURSOR`, and in follow mode the cursor line would only come at exit. `--all`
is: without it journalctl writes fields over 4096 bytes as null (a 1 MiB
`MESSAGE` would be lost).

Positions. The shipper confirms cursors (shipper.journals); a reader starts
from one with `--cursor=C` and drops C itself when it comes first. Not
`--after-cursor`: when C's entry is gone (vacuumed), journalctl seeks to where
it was and `--after-cursor` then skips one more entry, one that still exists.
When the first entry is not C, a second, unfiltered `journalctl --cursor=C`
tells whether C is still there (the filters changed: nothing skipped) or not:
then the oldest entry still there is where reading resumed, and the seqnums
between C and it are counted as skipped (`opslog_shipper_journal_skipped_entries`)
and logged. A cursor of another journal (another seqnum id) means the journal
was replaced: reading restarts from its oldest entry.

Bounds: each JSON line at most `line_limit` bytes (longer entries are skipped,
counted and logged; their cursor is unknown, the next entry's moves past them);
at most MAX_ENTRIES entries or MAX_BYTES waiting for the loop: when they wait,
the reader blocks, journalctl blocks on its pipe, and nothing more is read.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO

import orjson

from common.config import InputConfig
from common.coverage import journal_identity
from shipper.journal_entry import Cursor, Entry, entry_maker

log = logging.getLogger(__name__)

MAX_ENTRIES = 20_000          # entries read and waiting for the loop
MAX_BYTES = 32 << 20          # ... and their size
BACKOFF_INITIAL, BACKOFF_MAX = 0.5, 30.0
HEALTHY_AFTER = 10.0          # a journalctl that ran this long restarts without waiting
PIPE_BUFFER = 1 << 20
STDERR_LINES = 20             # journalctl's messages logged per process, at most
MAX_SKIPPED = 16              # vacuumed spans remembered for the heartbeats


def line_limit(input_config: InputConfig) -> int:
    """The longest JSON line read: a message of `max_line_bytes` as an array of byte values
    (up to 4 characters a byte), and 1 MiB for the other fields."""
    return 4 * input_config.max_line_bytes + (1 << 20)


def journalctl_args(input_config: InputConfig) -> list[str]:
    """What to read: the journal (or directory) and the input's filters."""
    jc = input_config.journald
    assert jc is not None
    args = ["--output=json", "--all", "--no-pager"]
    if jc.directory:
        args.append(f"--directory={jc.directory}")
    args += [f"--unit={unit}" for unit in jc.units]
    args += [f"--identifier={ident}" for ident in jc.identifiers]
    if jc.priority is not None:
        args.append(f"--priority={jc.priority}")
    return [*args, *jc.matches]


class JournalReader:
    """A journald input's journalctl, on a thread of its own, filling a bounded buffer.

    `take()` never blocks. `rewind(cursor)` drops what was read and not taken
    and restarts journalctl at `cursor` (None: where the input starts)."""

    def __init__(self, name: str, host: str, input_config: InputConfig, cursor: str | None, start_at_end: bool,
                 on_skipped: Callable[[int], None], on_oversized: Callable[[], None]):
        self.name = name
        self.input_config = input_config
        self.previous: dict[str, int] = {}  # per seqnum id, the seqnum read last (journal_entry.entry_maker)
        self.make = entry_maker(host, input_config, name, self.previous)
        self._read_through: Entry | None = None  # the last entry read (`progress`, for the heartbeats)
        self._skipped: deque[tuple[str, int, int]] = deque(maxlen=MAX_SKIPPED)  # (identity, start, end) vacuumed
        self.limit = line_limit(input_config)
        self.on_skipped, self.on_oversized = on_skipped, on_oversized
        self.anchor: str | None = None  # start_at: end: the journal's last entry when first started
        self.restarts = 0
        self.returncode: int | None = None  # of the last journalctl that ended
        self._start_at_end = start_at_end and cursor is None
        self._position = cursor   # where the next journalctl starts: after this cursor
        self._generation = 0
        self._buffer: deque[Entry] = deque()
        self._buffered_bytes = 0
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None  # the following journalctl
        self._stderr_threads: dict[int, threading.Thread] = {}
        self._bad_cursor = False  # journalctl said it cannot seek to the cursor it was given
        self._thread = threading.Thread(target=self._run, name=f"opslog-journal-{name}", daemon=True)

    # -- the loop's side -------------------------------------------------------------

    def start(self) -> JournalReader:
        self._thread.start()
        return self

    def take(self, limit: int) -> list[Entry]:
        with self._cond:
            if not self._buffer:
                return []
            count = min(limit, len(self._buffer))
            taken = [self._buffer.popleft() for _ in range(count)]
            self._buffered_bytes -= sum(e.size for e in taken)
            self._cond.notify_all()
        return taken

    def progress(self) -> tuple[Entry | None, list[tuple[str, int, int]]]:
        """The last entry read, and the spans skipped because the journal no longer held them."""
        with self._cond:
            return self._read_through, list(self._skipped)

    def rewind(self, cursor: str | None) -> None:
        """Read again after `cursor` (what the broker confirmed): drop the rest, restart."""
        with self._cond:
            self._generation += 1
            self._position = cursor or self.anchor
            self._buffer.clear()
            self._buffered_bytes = 0
            self._cond.notify_all()
        self._kill()

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self._kill()
        self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_INITIAL
        while not self._closing.is_set():
            generation = self._generation
            started = time.monotonic()
            try:
                self._follow(generation)
            except OSError as exc:
                log.error("journal input %s: cannot run journalctl: %s", self.name, exc)
            except Exception:  # a bug must not end the input for good: log it and start over
                log.exception("journal input %s: reader failed", self.name)
            if self._closing.is_set():
                break
            if generation != self._generation:
                continue  # rewound: start again at once
            if self._bad_cursor:
                log.error("journal input %s: journalctl cannot seek to the cursor %s; reading the journal from "
                          "its oldest entry (entries already stored keep their ids)", self.name, self._position)
                with self._cond:
                    if generation == self._generation:
                        self._position = None
                self._bad_cursor = False
            if time.monotonic() - started >= HEALTHY_AFTER:
                backoff = BACKOFF_INITIAL
            self.restarts += 1
            log.warning("journal input %s: journalctl stopped (exit status %s); starting it again in %.1fs",
                        self.name, self.returncode, backoff)
            self._closing.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _follow(self, generation: int) -> None:
        """Run one journalctl from the current position until it ends, is rewound or closed."""
        binary = shutil.which("journalctl")
        if binary is None:
            raise OSError("journalctl not found on PATH")
        base = [binary, *journalctl_args(self.input_config)]
        expect = self._position
        if expect is None and self._start_at_end:
            expect = self._last_cursor(base)
            if expect is not None:
                self.anchor = expect  # the loop confirms it: a restart then starts here too
                with self._cond:
                    if generation == self._generation:
                        self._position = expect
            self._start_at_end = False
        # --no-tail always: with --follow journalctl otherwise prints only 10 entries after the cursor
        # before it waits, and the rest of a burst written meanwhile only once the journal changes again
        where = [f"--cursor={expect}"] if expect is not None else []
        self._continue_after(expect)
        proc = self._spawn([*base, "--follow", "--no-tail", *where], follow=True)
        try:
            assert proc.stdout is not None
            for lines in self._chunks(proc.stdout):
                if generation != self._generation or self._closing.is_set():
                    return
                entries = []
                for line in lines:
                    try:
                        data = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        log.warning("journal input %s: journalctl wrote a line that is not JSON (%s)", self.name, exc)
                        continue
                    if expect is not None:
                        first, expect = expect, None
                        if data.get("__CURSOR") == first:
                            continue  # the confirmed entry itself
                        if not self._resumed_after(base, first):
                            with self._cond:
                                if generation == self._generation:
                                    self._position = None  # another journal: read it from its start
                            return
                    entry = self.make(data)
                    if entry is None:
                        log.warning("journal input %s: an entry without a cursor, skipped", self.name)
                        continue
                    entries.append(entry)
                if entries and not self._put(generation, entries):
                    return
        finally:
            self._end(proc)

    def _put(self, generation: int, entries: list[Entry]) -> bool:
        with self._cond:
            while (self._buffer and (len(self._buffer) >= MAX_ENTRIES or self._buffered_bytes >= MAX_BYTES)
                   and generation == self._generation and not self._closing.is_set()):
                self._cond.wait(0.2)
            if generation != self._generation or self._closing.is_set():
                return False
            self._buffer.extend(entries)
            self._buffered_bytes += sum(e.size for e in entries)
            self._position = entries[-1].cursor
            self._read_through = entries[-1]
        return True

    def _continue_after(self, cursor: str | None) -> None:
        """Coverage goes on from `cursor` (where this journalctl starts): the first entry read
        closes the seqnums after it; with no cursor, it closes only its own."""
        self.previous.clear()
        at = Cursor.parse(cursor) if cursor is not None else None
        if at is not None:
            self.previous[at.seqnum_id] = at.seqnum

    def _chunks(self, stream: IO[bytes]) -> Iterator[list[bytes]]:
        """The complete lines of each read from journalctl (reads, not lines, cost the calls);
        a line over `limit` bytes is skipped, counted and logged, and never held whole."""
        read, limit = stream.read1, self.limit  # type: ignore[attr-defined]
        pending, skipping = bytearray(), False
        while True:
            data = read(PIPE_BUFFER)
            if not data:
                return
            if skipping:  # the rest of an oversized line
                newline = data.find(b"\n")
                if newline < 0:
                    continue
                data, skipping = data[newline + 1:], False
            pending += data
            cut = pending.rfind(b"\n")
            if cut < 0:
                if len(pending) > limit:
                    pending.clear()
                    skipping = True
                    self._oversized()
                continue
            lines = bytes(pending[:cut]).split(b"\n")
            del pending[:cut + 1]
            if len(pending) > limit:
                pending.clear()
                skipping = True
                self._oversized()
            if any(len(line) > limit for line in lines):  # complete in this read, and too long
                for _ in filter(lambda line: len(line) > limit, lines):
                    self._oversized()
                lines = [line for line in lines if len(line) <= limit]
            yield lines

    def _oversized(self) -> None:
        self.on_oversized()
        log.warning("journal input %s: an entry over %d bytes of JSON skipped", self.name, self.limit)

    def _resumed_after(self, base: list[str], first: str) -> bool:
        """The first entry read is not `first` (the confirmed cursor): find out why, and count
        what was skipped. False when reading must start over from the journal's start."""
        oldest = self._first_at(base[:1] + [a for a in base[1:] if a.startswith("--directory=")], first)
        if oldest == first:
            return True  # still there: it just does not match the filters any more
        gone, now = Cursor.parse(first), Cursor.parse(oldest) if oldest else None
        if gone is not None and now is not None and gone.seqnum_id == now.seqnum_id:
            skipped = max(0, now.seqnum - gone.seqnum - 1)
            log.warning("journal input %s: the confirmed position (seqnum %d) is no longer in the journal "
                        "(vacuumed); resuming at the oldest entry still there (seqnum %d): %d entries skipped",
                        self.name, gone.seqnum, now.seqnum, skipped)
            if skipped:
                self.on_skipped(skipped)
                with self._cond:  # `progress` copies it on the loop's thread
                    self._skipped.append((journal_identity(now.seqnum_id, self.name), gone.seqnum + 1, now.seqnum))
            self.previous[now.seqnum_id] = now.seqnum - 1  # the skipped span stays a gap: vacuumed
            return True
        log.warning("journal input %s: the confirmed position %s belongs to a journal that is gone; "
                    "reading the journal from its oldest entry (the entries skipped cannot be counted)",
                    self.name, first)
        return False

    def _first_at(self, base: list[str], cursor: str) -> str | None:
        """The cursor of the first entry at or after `cursor`, unfiltered."""
        return self._one_cursor([*base, "--output=json", "--all", "--no-pager", f"--cursor={cursor}"])

    def _last_cursor(self, base: list[str]) -> str | None:
        """The cursor of the input's last entry now (start_at: end)."""
        return self._one_cursor([*base, "--lines=1", "--output-fields=__CURSOR"])

    def _one_cursor(self, args: list[str]) -> str | None:
        proc = self._spawn(args)
        try:
            assert proc.stdout is not None
            for lines in self._chunks(proc.stdout):
                for line in lines:
                    try:
                        cursor = orjson.loads(line).get("__CURSOR")
                    except orjson.JSONDecodeError:
                        continue
                    return cursor if isinstance(cursor, str) else None
            return None
        finally:
            self._end(proc)

    def _spawn(self, args: list[str], follow: bool = False) -> subprocess.Popen[bytes]:
        """Start journalctl. The following one is what `rewind` and `close` kill; the one-shot
        checks end by themselves once their first line is read."""
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                bufsize=PIPE_BUFFER)
        stderr = threading.Thread(target=self._log_stderr, args=(proc, follow), daemon=True,
                                  name=f"opslog-journal-{self.name}-stderr")
        stderr.start()
        self._stderr_threads[proc.pid] = stderr
        if follow:
            with self._cond:
                self._proc = proc
        if self._closing.is_set():
            proc.kill()
        return proc

    def _log_stderr(self, proc: subprocess.Popen[bytes], follow: bool) -> None:
        assert proc.stderr is not None
        logged = 0
        for raw in iter(lambda: proc.stderr.readline(4096), b""):  # type: ignore[union-attr]
            text = raw.decode("utf-8", "replace").rstrip()
            if follow and "cursor" in text.lower():  # "Failed to seek to cursor": a cursor it cannot read
                self._bad_cursor = True
            if logged < STDERR_LINES:
                log.warning("journal input %s: journalctl: %s", self.name, text)
                logged += 1

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        returncode = proc.wait()
        stderr = self._stderr_threads.pop(proc.pid, None)
        if stderr is not None:
            stderr.join(1.0)  # its last words are read before the exit is judged
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        with self._cond:
            if self._proc is proc:
                self._proc = None
                self.returncode = returncode

    def _kill(self) -> None:
        with self._cond:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
