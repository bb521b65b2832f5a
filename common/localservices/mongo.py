"""A local MongoDB-compatible server (SecantusDB), run as a child process on a port we pick."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from common.localservices.errors import ServiceNotInstalled
from common.localservices.mongo_ping import ping
from common.localservices.ports import ensure_port_free, free_port
from common.localservices.processes import POLL_INTERVAL, group_alive, log_file, signal_group, terminate
from common.localservices.readiness import DEFAULT_STALL_TIMEOUT, wait_until_ready

log = logging.getLogger(__name__)


def _secantusd() -> str:
    """secantusd-py from this interpreter's environment first, so a venv's copy wins."""
    beside = Path(sys.executable).parent / "secantusd-py"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("secantusd-py")
    if found:
        return found
    raise ServiceNotInstalled(
        "secantusd-py not found next to the Python interpreter or on PATH: install the "
        "MongoDB-compatible local server with `pip install secantusdb==0.7.0b3` "
        "(or point mongo.uri at a running MongoDB)")


class MongoServer:
    """A local SecantusDB server (MongoDB wire protocol) on 127.0.0.1.

    With a `base_dir` the data lives in `base_dir/data` and survives stop/start
    and kill/start on the same port; `in_memory=True` keeps nothing.

    Opening a store takes time in proportion to its records (SecantusDB reads
    every document's key), so `start()` waits as long as the server works and
    gives up only after `stall_timeout` seconds without progress (see
    common.localservices.readiness).
    """

    def __init__(self, base_dir: str | Path | None, port: int | None = None, in_memory: bool = False, *,
                 stall_timeout: float = DEFAULT_STALL_TIMEOUT, extra_args: Sequence[str] = ()):
        if base_dir is None and not in_memory:
            raise ValueError("MongoServer needs a base_dir unless in_memory=True")
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else None
        self.in_memory = in_memory
        self.stall_timeout = stall_timeout
        self.extra_args = list(extra_args)  # more secantusd-py flags, e.g. --cache-size 2G
        self.port = port if port is not None else free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}"
        self.last_start_seconds: float | None = None
        self.last_stop_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.base_dir / "secantusd.log" if self.base_dir is not None else None

    def __repr__(self) -> str:
        return f"MongoServer(port={self.port}, pid={self.pid}, in_memory={self.in_memory})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> Self:
        """Start the server; returns once it answers `ping`, however long opening its store takes."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        program = _secantusd()
        ensure_port_free(self.port, "the MongoDB-compatible server")
        if self.base_dir is None:
            # Logs only: an in-memory server without a home still needs somewhere to explain a failure.
            self.base_dir = Path(tempfile.mkdtemp(prefix="opslog-mongo-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # An explicit (empty) config file turns off secantusd's search of ~ and /etc.
        config = self.base_dir / "secantusd.toml"
        if not config.exists():
            config.write_text("# private opslog server: defaults only\n", encoding="utf-8")
        storage = ":memory:" if self.in_memory else str(self.base_dir / "data")
        argv = [program, "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port),
                "--storage-path", storage, *self.extra_args]
        began = time.monotonic()
        assert self.log_path is not None
        log.info("starting the MongoDB-compatible server on port %d (data: %s, log: %s)", self.port, storage,
                 self.log_path)
        with log_file(self.log_path, argv) as out:
            self._proc = subprocess.Popen(argv, cwd=self.base_dir, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began
        log.info("MongoDB-compatible server ready on port %d in %.1fs", self.port, self.last_start_seconds)
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.log_path is not None
        wait_until_ready(lambda: ping("127.0.0.1", self.port), self._proc, logs=[self.log_path],
                         stall_timeout=self.stall_timeout,
                         what=f"the MongoDB-compatible server (secantusd-py) on port {self.port}")

    def stop(self) -> None:
        """SIGTERM (it checkpoints its data), then SIGKILL after a grace period; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            began = time.monotonic()
            terminate(proc, timeout=20)
            self.last_stop_seconds = time.monotonic() - began
            log.info("MongoDB-compatible server on port %d stopped in %.1fs", self.port, self.last_stop_seconds)
        self._remove_own_dir()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no checkpoint, the storage must recover on restart."""
        proc, self._proc = self._proc, None
        if proc is not None:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            while group_alive(proc.pid):
                time.sleep(POLL_INTERVAL)
        self._remove_own_dir()

    def _remove_own_dir(self) -> None:
        if self._own_dir and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
