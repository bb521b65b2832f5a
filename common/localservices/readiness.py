"""Waiting for a local service to start: a readiness probe with no fixed deadline.

How long a server takes to answer depends on its data, not on a constant:
SecantusDB walks every document's key when it opens a store (measured: 10.5 s
for the bench's million log records on a quiet machine, over 30 s under load;
a million tiny records cost it 3.2 s of CPU), and a RabbitMQ node replays its
message store. So the wait below has no overall
deadline. It gives up when the process exits, or when the process shows no
sign of work for `stall_timeout` seconds: no CPU time used, no bytes read,
no line added to its logs (the signs `top`, `iotop` and `tail -f` would show
an operator). A process that is merely starved of CPU keeps adding CPU time,
however slowly; a hung, stopped or deadlocked-in-sleep one does not.

While it waits it logs a line every REPORT_EVERY seconds, so `opslog up` on a
big store says what it is waiting for and that the server is working.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from common.localservices.errors import ServiceError
from common.localservices.processes import POLL_INTERVAL, descendants, last_lines

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT = 60.0
"""Seconds without any CPU time, read or log line before a starting service is given up on.
Even a starved process gets some CPU every second; a minute of none is a stuck one."""

SAMPLE_EVERY = 1.0
REPORT_EVERY = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Activity(NamedTuple):
    """Counters that only grow while a process tree works; any change is progress."""
    cpu_ticks: int
    read_chars: int  # /proc/PID/io rchar: reads served from the page cache count too
    log_bytes: int

    def cpu_seconds(self) -> float:
        return self.cpu_ticks / _CLOCK_TICKS


def activity(pid: int, logs: Sequence[Path]) -> Activity:
    """CPU time and bytes read by `pid` and its descendants, and the size of its logs.

    A RabbitMQ node's work happens in `beam.smp` below a shell script, hence the tree."""
    ticks = chars = 0
    for member in (pid, *descendants(pid)):
        try:
            with open(f"/proc/{member}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        try:
            with open(f"/proc/{member}/io", encoding="ascii") as fh:
                chars += next((int(line.split()[1]) for line in fh if line.startswith("rchar:")), 0)
        except (OSError, ValueError):
            pass  # /proc/PID/io needs the same user and a kernel with task IO accounting
    size = 0
    for path in logs:
        try:
            size += path.stat().st_size
        except OSError:
            pass
    return Activity(ticks, chars, size)


def wait_until_ready(ready: Callable[[], bool], proc: subprocess.Popen[bytes], *, what: str,
                     logs: Sequence[Path], stall_timeout: float = DEFAULT_STALL_TIMEOUT,
                     tail: Callable[[], str] | None = None) -> None:
    """Return once `ready()` is true; ServiceError when `proc` exits or stalls first.

    `logs` are the service's log files, the first one being the one an operator
    should read; `tail` gives the lines quoted in an error (default: the end of
    the first log). The error says where to look and how to allow a longer stall."""
    began = last_progress = last_sample = last_report = time.monotonic()
    seen = activity(proc.pid, logs)
    quote = tail or (lambda: last_lines(logs[0]))
    while not ready():
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with status {proc.returncode} while starting, after "
                               f"{time.monotonic() - began:.0f}s; its log is {logs[0]}, last lines:\n{quote()}")
        now = time.monotonic()
        if now - last_sample >= SAMPLE_EVERY:
            last_sample = now
            current = activity(proc.pid, logs)
            if current != seen:
                seen, last_progress = current, now
            elif now - last_progress > stall_timeout:
                raise ServiceError(
                    f"{what} (pid {proc.pid}) is not answering after {now - began:.0f}s and has shown no "
                    f"progress for {now - last_progress:.0f}s (no CPU time used, nothing read, its log "
                    f"unchanged), so it is stopped. Read {logs[0]} for why; if the machine was only "
                    f"very busy, allow a longer stall: `opslog up --stall-timeout SECONDS` (in code: "
                    f"stall_timeout=, now {stall_timeout:.0f}s). Last lines of its log:\n{quote()}")
            if now - last_report >= REPORT_EVERY:
                last_report = now
                log.info("still waiting for %s to answer: %.0fs so far, it is working (%.1fs CPU, %d MiB read); "
                         "log: %s", what, now - began, seen.cpu_seconds(), seen.read_chars >> 20, logs[0])
        time.sleep(POLL_INTERVAL)
