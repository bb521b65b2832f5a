"""What the shipper suites (tests/test_shipper_*.py) share: writing log lines,
running `opslog ship`, reading what reached the broker, and looking at the
shipper process from outside (/proc, /metrics).

Records are read straight off the queue with pika (not through opslog's own
broker module) and de-duplicated by id, exactly as the consumer stores them:
"stored exactly once" means every written line has one id, and no line has two.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

from common.record import decode_batch, heartbeats
from tests.helpers import OpslogProcess, run_opslog, stop, wait_until
from tests.helpers import metric as metric  # the shipper tests' metric(), kept where they import it


def numbered(prefix: str, start: int, count: int) -> list[str]:
    return [f"{prefix} line {i:07d} GET /api/orders/{i} took {i % 997}ms" for i in range(start, start + count)]


def append(path: Path, lines: list[str], newline: str = "\n", encoding: str = "utf-8") -> None:
    with open(path, "a", encoding=encoding, newline="") as fh:
        fh.write("".join(line + newline for line in lines))


def line_offsets(data: bytes) -> dict[int, bytes]:
    """offset -> line (without its ending) for every complete line of `data`."""
    offsets, pos = {}, 0
    for raw in data.splitlines(keepends=True):
        if raw.endswith(b"\n"):
            offsets[pos] = raw.rstrip(b"\n").removesuffix(b"\r")
        pos += len(raw)
    return offsets


class Writer(threading.Thread):
    """Appends numbered lines to a log file continuously, the way an application
    does, until stopped; `rotate` runs a rotation between two writes, like an
    application that is told to reopen its log file."""

    def __init__(self, path: Path, per_burst: int = 20, pause: float = 0.002, prefix: str = "app"):
        super().__init__(daemon=True)
        self.path, self.per_burst, self.pause, self.prefix = path, per_burst, pause, prefix
        self.written: list[str] = []
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open like an application's log file

    def run(self) -> None:
        while not self._halt.is_set():
            with self.lock:
                lines = numbered(self.prefix, len(self.written), self.per_burst)
                self._fh.write("".join(line + "\n" for line in lines))
                self._fh.flush()
                self.written += lines
            time.sleep(self.pause)

    def rotate(self, rotation: Callable[[], None], reopen: bool = True, late_lines: int = 0) -> None:
        """Run `rotation` between two writes; then write `late_lines` more to the file
        still open (an application is told to reopen only after the rename) and reopen."""
        with self.lock:
            rotation()
            lines = numbered(self.prefix, len(self.written), late_lines)
            self._fh.write("".join(line + "\n" for line in lines))
            self._fh.flush()
            self.written += lines
            if reopen:
                self._fh.close()
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def finish(self) -> list[str]:
        self._halt.set()
        self.join()
        self._fh.close()
        return self.written


@dataclass
class Received:
    """What reached the queue, de-duplicated by record id as the consumer stores it."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: int = 0
    sent: Counter[tuple[str, int]] = field(default_factory=Counter)  # (source, offset), re-sends included
    heartbeats: list[bytes] = field(default_factory=list)  # the per-file heartbeat messages, set apart

    def messages(self) -> list[str]:
        return [r["message"] for r in self.by_id.values()]

    def assert_exactly_once(self, expected: list[str]) -> None:
        """Every expected line stored once: one id each, and no line under two ids."""
        messages = self.messages()
        missing = set(expected) - set(messages)
        assert not missing, f"{len(missing)} of {len(expected)} lines never arrived, e.g. {sorted(missing)[:3]}"
        extra = set(messages) - set(expected)
        assert not extra, f"{len(extra)} unexpected records, e.g. {sorted(extra)[:3]}"
        assert len(messages) == len(set(messages)), (
            f"{len(messages) - len(set(messages))} lines stored twice (under different ids)")


class QueueReader:
    """Reads (and acks) every record the shipper publishes to `queue`."""

    def __init__(self, amqp_url: str, queue: str):
        self.amqp_url, self.queue = amqp_url, queue
        self.received = Received()
        self._connection: pika.BlockingConnection | None = None

    def _channel(self) -> Any:
        if self._connection is None or not self._connection.is_open:
            params = pika.URLParameters(self.amqp_url)
            params.connection_attempts, params.socket_timeout = 1, 5
            self._connection = pika.BlockingConnection(params)
        return self._connection.channel()

    def poll(self) -> Received:
        """Take what is in the queue now (nothing yet if the shipper has not declared it)."""
        try:
            channel = self._channel()
            while True:
                method, props, body = channel.basic_get(self.queue, auto_ack=True)
                if method is None:
                    break
                if (props.headers or {}).get(heartbeats.KIND_HEADER) == heartbeats.KIND:
                    self.received.heartbeats.append(body)  # per-file heartbeats: no records, and never-ending
                    continue
                self.received.deliveries += 1
                for entry in decode_batch(body):
                    self.received.by_id.setdefault(entry["id"], entry)
                    self.received.sent[entry["source"], entry["offset"]] += 1
            channel.close()
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
        except pika.exceptions.AMQPConnectionError:
            self._connection = None  # the broker is down on purpose in some tests
        return self.received

    def wait_for(self, count: int, timeout: float = 60.0, message: str = "") -> Received:
        wait_until(lambda: len(self.poll().by_id) >= count, timeout=timeout, interval=0.2,
                   message=message or f"{count} records in {self.queue}")
        return self.received

    def settle(self, seconds: float = 1.0, timeout: float = 60.0) -> Received:
        """Wait until nothing new has arrived for `seconds` (anything re-sent is in by then).
        A shipper that never stops sending (re-sending in a loop) fails after `timeout`."""
        deadline = time.monotonic() + timeout
        last = -1
        while self.received.deliveries != last:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.queue} still receiving after {timeout}s "
                                     f"({self.received.deliveries} deliveries): not settling")
            last = self.received.deliveries
            time.sleep(seconds)
            self.poll()
        return self.received

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()


def shipper_config(write_config: Callable[..., Path], directory: Path, inputs: list[dict[str, Any]],
                   **shipper: Any) -> Path:
    """A config with these inputs and quick scans, on the test's broker and names."""
    amqp = shipper.pop("amqp", {})
    settings = {"scan_interval": "0.2s", "batch_max_wait": "0.1s", "inputs": inputs, **shipper}
    return write_config(directory, shipper=settings, **({"amqp": amqp} if amqp else {}))


@contextmanager
def running_shipper(config: Path) -> Iterator[OpslogProcess]:
    """`opslog ship -c config`, stopped with SIGTERM (and required to exit 0) afterwards."""
    proc = run_opslog("ship", config=config)
    try:
        yield proc
    finally:
        code = stop(proc)
        assert code == 0, f"opslog ship exited {code}:\n{proc.output()[-3000:]}"


def kill9(proc: OpslogProcess) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_paths(pid: int, directory: Path) -> set[str]:
    """The files under `directory` that process `pid` has open now (not `directory` itself, which the
    shipper holds open for a moment while it opens a file below it without following symlinks)."""
    inside = os.path.join(str(directory), "")
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(inside):
            found.add(target)
    return found
