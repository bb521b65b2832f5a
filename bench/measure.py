"""What the benchmarks measure a process by, read from /proc, and how runs are summarised.

CPU seconds are utime + stime from /proc/PID/stat, summed over the process and
its descendants (a descendant that exits between two samples keeps its last
sampled time). Peak RSS is the kernel's own high-water mark, VmHWM in
/proc/PID/status, so it does not depend on when we sample; for a process tree
it is the sum of the members' peaks, an upper bound.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name may hold spaces and ')': fields start after the last ')'.
    return stat[stat.rfind(")") + 2:].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, or None once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    """`pid` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


class ProcessTree:
    """CPU time and peak RSS of a process and its descendants, sampled on demand."""

    def __init__(self, pid: int):
        self.pid = pid
        self.cpu: dict[int, float] = {}
        self.hwm: dict[int, float] = {}
        self.sampled_at = 0.0

    def sample_every(self, seconds: float = 1.0) -> None:
        """Sample at most every `seconds`: a /proc scan costs CPU the measured process may want."""
        if time.monotonic() - self.sampled_at >= seconds:
            self.sample()

    def sample(self) -> ProcessTree:
        self.sampled_at = time.monotonic()
        for pid in descendants(self.pid):
            cpu, hwm = cpu_seconds(pid), peak_rss_mib(pid)
            if cpu is not None:
                self.cpu[pid] = cpu
            if hwm is not None:
                self.hwm[pid] = max(hwm, self.hwm.get(pid, 0.0))
        return self

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu.values())

    @property
    def rss_mib(self) -> float:
        return sum(self.hwm.values())


def wait_until(done: Callable[[], bool], timeout: float, interval: float = 0.05,
               alive: Callable[[], bool] | None = None, what: str = "condition") -> float:
    """Poll `done` until true; the monotonic time it first was. TimeoutError after
    `timeout` s, RuntimeError as soon as `alive()` says the process under test died."""
    deadline = time.monotonic() + timeout
    while True:
        if done():
            return time.monotonic()
        if alive is not None and not alive():
            raise RuntimeError(f"process under test exited before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout:.0f}s")
        time.sleep(interval)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def summarize(runs: list[dict[str, float]], digits: int = 1) -> dict[str, object]:
    """The median of each figure over the runs, plus every run's figures as `runs`."""
    keys = [k for k in runs[0] if all(isinstance(r.get(k), (int, float)) for r in runs)]
    summary: dict[str, object] = {k: _round(median(r[k] for r in runs), digits) for k in keys}
    summary["runs"] = [{k: _round(v, digits) if isinstance(v, float) else v for k, v in r.items()} for r in runs]
    return summary


def _round(value: float, digits: int) -> float | int:
    """Whole numbers for rates in the thousands, `digits` decimals below that."""
    return round(value) if abs(value) >= 1000 else round(value, digits)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
