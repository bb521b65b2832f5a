"""The child processes of local services: the process table, process trees and
groups, stopping a group for good, and each service's console log.

Each service is started in its own session: Ctrl-C in the terminal that runs
`opslog up` or pytest reaches the parent only, which then stops the services in
order instead of having them die mid-write. A service may leave that session
(see common.localservices.rabbitmq), so its descendants can also be recorded from
/proc and swept up on stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple

POLL_INTERVAL = 0.1


class _Proc(NamedTuple):
    ppid: int
    pgid: int
    state: str
    started: int  # clock ticks since boot: tells a process from a later one with its pid


def _proc_table() -> dict[int, _Proc]:
    """Every process on the machine, from /proc; empty where there is no /proc."""
    table: dict[int, _Proc] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The fields after the command name, which may itself contain spaces and ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry)] = _Proc(ppid=int(fields[1]), pgid=int(fields[2]), state=fields[0],
                                  started=int(fields[19]))
    return table


def descendants(pid: int) -> dict[int, int]:
    """Every live descendant of `pid` as pid -> start time."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, proc in table.items():
        children.setdefault(proc.ppid, []).append(child)
    found: dict[int, int] = {}
    todo = list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        if child not in found:
            found[child] = table[child].started
            todo.extend(children.get(child, ()))
    return found


def kill_survivors(processes: dict[int, int]) -> None:
    """SIGKILL the recorded processes that still run (same pid and start time)."""
    table = _proc_table()
    for pid, started in processes.items():
        proc = table.get(pid)
        if proc is not None and proc.started == started and proc.state != "Z":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` runs. Zombies do not count: where
    pid 1 does not reap orphans (some containers), they would never go away."""
    table = _proc_table()
    if table:
        return any(proc.pgid == pgid and proc.state != "Z" for proc in table.values())
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group `proc` leads, wait, then SIGKILL it; always reaps `proc`.

    Waiting also for the rest of the group keeps a restart from racing a dying
    server for its port or its data files."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        signal_group(proc.pid, sig)
        # As systemd does: a stopped process (Ctrl-Z, a debugger, a stalled start) acts on SIGTERM only once continued.
        signal_group(proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None and not group_alive(proc.pid):
                return
            time.sleep(POLL_INTERVAL)
    proc.wait(timeout=10)


@contextmanager
def log_file(path: Path, argv: list[str]) -> Iterator[IO[bytes]]:
    """The service's console log, appended to across restarts, each run headed
    by its command. The child keeps its own descriptor, so ours is closed as
    soon as the child is spawned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        fh.flush()
        yield fh


def last_lines(path: Path, lines: int = 30) -> str:
    """The end of a console log, to explain a failure; empty when there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
