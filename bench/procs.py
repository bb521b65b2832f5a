"""opslog processes under test: their config, their lifetime, their own counters.

Each runs as `python -m common.cli <command> -c CONFIG` from this checkout, with
its log in its run directory, and is stopped with SIGTERM as an operator would.
Progress is read from the process's Prometheus endpoint (`metrics_listen`),
the counters opslog itself keeps: the shipper counts records only once the
broker confirmed them, the consumer only once the database stored them.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from bench.context import REPO_DIR, Context
from bench.measure import ProcessTree
from tests.helpers import scrape  # the bench and the tests share the repo's dev helpers


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def metric(port: int, name: str) -> float:
    """The sum of a metric's samples (`name` or `name_total`, any labels) at 127.0.0.1:port; 0 while unreachable."""
    samples = scrape(port, timeout=2) or {}
    return sum((value for sample, value in samples.items() if sample.partition("{")[0] in (name, f"{name}_total")), 0.0)


class OpslogProcess:
    def __init__(self, ctx: Context, command: str, config: Path):
        self.log_path = config.with_suffix(".log")
        self.argv = ctx.opslog_command(command, config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree: ProcessTree | None = None
        self.started = 0.0

    def start(self) -> OpslogProcess:
        with open(self.log_path, "ab") as log:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(self.argv, cwd=REPO_DIR, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.tree = ProcessTree(self.proc.pid)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, wait, SIGKILL if it hangs; its exit status (None if it had to be killed)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> OpslogProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
