"""Small helpers the test suites share: polling, broker inspection, running the CLI.

Tests talk to the broker with pika directly (rather than through opslog's
broker module) so that what they check does not depend on the code under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import pika
import pika.exceptions

REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.1,
               message: str = "") -> T:
    """Poll `predicate` until it returns something truthy and return that value.

    Asynchronous effects (a line shipped, a document stored) have no event to wait
    on from outside the process, so tests poll with a deadline instead of sleeping."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"{what} still false after {timeout:.1f}s (last value: {result!r})")
        time.sleep(interval)


def _connection(amqp_url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(amqp_url)
    params.connection_attempts, params.socket_timeout = 1, 5
    return pika.BlockingConnection(params)


def queue_depth(amqp_url: str, queue: str) -> int:
    """Ready messages in `queue` (unacked ones are not counted); passive, so it
    never creates the queue. Raises pika's ChannelClosedByBroker if it does not exist."""
    connection = _connection(amqp_url)
    try:
        frame = connection.channel().queue_declare(queue, passive=True)
        return int(frame.method.message_count)
    finally:
        if connection.is_open:
            connection.close()


def delete_amqp_objects(amqp_url: str, queues: tuple[str, ...] = (), exchanges: tuple[str, ...] = ()) -> None:
    """Best-effort removal of what a test declared, so a long-lived broker does not fill up."""
    jobs = [("queue_delete", name) for name in queues] + [("exchange_delete", name) for name in exchanges]
    try:
        connection = _connection(amqp_url)
    except pika.exceptions.AMQPError:
        return  # the test stopped or broke the broker; nothing to clean
    try:
        channel = connection.channel()
        for method, name in jobs:
            try:
                getattr(channel, method)(name)
            except pika.exceptions.AMQPChannelError:
                channel = connection.channel()  # e.g. exclusive to a live consumer: skip it
    except pika.exceptions.AMQPConnectionError:
        pass
    finally:
        if connection.is_open:
            connection.close()


class OpslogProcess(subprocess.Popen[bytes]):
    """A running `opslog` command; its output goes to `log_path`."""

    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def run_opslog(*args: str, config: str | Path | None, log_dir: str | Path | None = None,
               env: Mapping[str, str] | None = None) -> OpslogProcess:
    """Start `opslog ARGS... [-c CONFIG]` as the console script would run it.

    It runs as `python -m common.cli` from the repo root, with this checkout first on the path
    (the commands come from the `opslog.commands` entry points of the editable install).
    The output goes to a numbered log file in `log_dir` (default: the config's
    folder). OPSLOG_AMQP_URL / OPSLOG_MONGO_URI from the developer's shell are
    dropped: they would silently override the test's config."""
    if log_dir is None:
        if config is None:
            raise ValueError("run_opslog needs log_dir when there is no config")
        log_dir = Path(config).parent
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    command = args[0] if args else "opslog"
    number = 1 + sum(1 for _ in log_dir.glob(f"opslog-{command}-*.log"))
    log_path = log_dir / f"opslog-{command}-{number}.log"

    child_env = {k: v for k, v in os.environ.items() if k not in ("OPSLOG_AMQP_URL", "OPSLOG_MONGO_URI")}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.update(env or {})

    argv = [sys.executable, "-m", "common.cli", *args]
    if config is not None:
        argv += ["-c", str(config)]
    with open(log_path, "wb") as out:
        proc = OpslogProcess(argv, cwd=REPO_ROOT, env=child_env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT)
    proc.log_path = log_path
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send `sig` and return the exit code; a process that ignores it is killed and
    the test fails, since "stops cleanly on SIGTERM/SIGINT" is part of the contract."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        tail = proc.output()[-3000:] if isinstance(proc, OpslogProcess) else ""
        raise AssertionError(f"pid {proc.pid} did not exit within {timeout:.0f}s of signal {sig}; "
                             f"killed it.\n{tail}") from None


def scrape(address: str | int, timeout: float = 5.0) -> dict[str, float] | None:
    """Every sample on `address`'s /metrics (a port: on 127.0.0.1), keyed by its name with its
    labels as written (`name{path="/x"}`); None while the endpoint does not answer."""
    host = f"127.0.0.1:{address}" if isinstance(address, int) else address
    try:
        with urllib.request.urlopen(f"http://{host}/metrics", timeout=timeout) as response:
            text = response.read().decode()
    except OSError:  # refused, reset, timed out (urllib's URLError is one too)
        return None
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            sample, _, value = line.rpartition(" ")
            samples[sample] = float(value)
    return samples


def metric(address: str | int, name: str, labels: str = "") -> float | None:
    """One sample on `address`'s /metrics: `name{labels}`, or a counter's `name_total{labels}`;
    None if it is not there or the endpoint does not answer."""
    samples = scrape(address)
    if samples is None:
        return None
    for sample in (name, f"{name}_total"):
        key = f"{sample}{{{labels}}}" if labels else sample
        if key in samples:
            return samples[key]
    return None
