"""epmd, the Erlang port mapper through which Erlang nodes and rabbitmqctl find each other.

An `epmd -daemon` started by Erlang detaches to init and outlives its node, so
we run epmd ourselves, in the foreground on a private port, and stop it with
the node (or, in a cluster, with the last of its nodes).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from common.localservices.errors import ServiceError, ServiceNotInstalled
from common.localservices.ports import port_open
from common.localservices.processes import POLL_INTERVAL, last_lines, log_file, terminate

log = logging.getLogger(__name__)


def epmd_program() -> str:
    epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
    if not os.access(epmd, os.X_OK):
        raise ServiceNotInstalled("epmd not found: install it with `apt-get install rabbitmq-server` "
                                  "(it comes with erlang-base)")
    return epmd


def start_epmd(port: int, log_path: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Our own epmd in the foreground on a private port, so it never outlives its nodes as a daemon."""
    argv = [epmd_program(), "-port", str(port), "-address", "127.0.0.1"]
    with log_file(log_path, argv) as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 10
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            terminate(proc, timeout=5)
            raise ServiceError(f"epmd did not start on port {port}; last lines of {log_path}:\n{last_lines(log_path)}")
        time.sleep(POLL_INTERVAL)
    return proc


def stop_epmd(proc: subprocess.Popen[bytes], port: int, log_path: Path, env: dict[str, str]) -> None:
    if proc.poll() is None:
        argv = [str(proc.args[0]), "-port", str(port), "-kill"]  # type: ignore[index]
        try:
            with log_file(log_path, argv) as out:
                subprocess.run(argv, check=False, env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=10, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("epmd -kill failed: %s", exc)
    if proc.poll() is None:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            terminate(proc, timeout=5)
    proc.wait()
