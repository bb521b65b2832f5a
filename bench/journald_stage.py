"""The journald input: journal entries -> broker, against the json file in the same run.

A journal directory is written once by systemd-journal-remote (`make system-deps`
installs it) from the syslog bench file's messages, each entry with the ~20
fields journald gives a service's message (trusted `_PID`, `_UID`, `_COMM`,
`_EXE`, `_CMDLINE`, `_SYSTEMD_*`, `_BOOT_ID`, `_MACHINE_ID`...), so the JSON
journalctl writes is as long as on a real host (about 1 KiB an entry).

Three figures, in this order, each the median of BENCH_RUNS:
- `journalctl_entries_s`: `journalctl -o json --all` alone into a pipe we drain:
  the bound the input cannot pass;
- `journald`: `opslog ship` with one `type: journald` input on the directory,
  timed as the shipper stage times files (bench.shipper_stage: from the process
  start until its confirmed-records counter holds every entry; the queue is
  then counted);
- `json`: the shipper stage's json run on the json bench file, the same-run
  baseline (`vs_json` and the `shipper_journald_vs_json` ratio).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.context import Context, env_int
from bench.measure import summarize
from bench.shipper_stage import one_run

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "6f1e0c3a9d2b4e5f8a7b6c5d4e3f2a1b"
MACHINE_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
UNITS = ("nginx.service", "cron.service", "sshd.service", "postgresql@15-main.service", "kubelet.service")


def _entries(syslog_path: str, count: int, start_us: int) -> bytes:
    """`count` entries in journal export format, messages from the syslog bench file."""
    out = []
    with open(syslog_path, encoding="utf-8") as fh:
        for i, line in zip(range(count), fh, strict=False):
            head, _, message = line.rstrip("\n").partition(": ")
            prog = head.rsplit(" ", 1)[-1].split("[", 1)[0] or "app"
            unit = UNITS[i % len(UNITS)]
            out.append(
                f"__REALTIME_TIMESTAMP={start_us + i * 4000}\n__MONOTONIC_TIMESTAMP={1_000_000 + i * 4000}\n"
                f"_BOOT_ID={BOOT_ID}\n_MACHINE_ID={MACHINE_ID}\n_HOSTNAME=web-01\n_TRANSPORT=stdout\n"
                f"PRIORITY={(3, 4, 6, 6, 6, 6, 7)[i % 7]}\nSYSLOG_FACILITY=3\nSYSLOG_IDENTIFIER={prog}\n"
                f"_PID={1000 + i % 300}\n_UID=0\n_GID=0\n_COMM={prog[:15]}\n_EXE=/usr/sbin/{prog}\n"
                f"_CMDLINE=/usr/sbin/{prog} --config /etc/{prog}/{prog}.conf --foreground\n"
                f"_CAP_EFFECTIVE=1ffffffffff\n_SELINUX_CONTEXT=unconfined\n_SYSTEMD_CGROUP=/system.slice/{unit}\n"
                f"_SYSTEMD_UNIT={unit}\n_SYSTEMD_SLICE=system.slice\n"
                f"_SYSTEMD_INVOCATION_ID=4c5d6e7f8091a2b3c4d5e6f7a8b9c0d{i % 5}\n_STREAM_ID=9f8e7d6c5b4a3{i % 5}\n"
                f"MESSAGE={message}\n\n")
    return "".join(out).encode()


def write_journal(ctx: Context, directory: Path, count: int) -> dict:
    directory.mkdir(parents=True)
    began = time.monotonic()
    data = _entries(ctx.path("syslog"), count, int(time.time() * 1e6) - count * 4000)
    subprocess.run([JOURNAL_REMOTE, f"--output={directory / 'remote.journal'}", "-"], input=data,
                   capture_output=True, check=True)
    size = sum(f.stat().st_size for f in directory.glob("*.journal"))
    return {"entries": count, "export_bytes": len(data), "journal_mib": round(size / (1 << 20), 1),
            "written_s": round(time.monotonic() - began, 1)}


def journalctl_alone(directory: Path, count: int) -> dict[str, float]:
    began = time.monotonic()
    proc = subprocess.Popen(["journalctl", f"--directory={directory}", "--output=json", "--all", "--no-pager"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: proc.stdout.read1(1 << 20), b""))  # type: ignore
    proc.wait()
    elapsed = time.monotonic() - began
    if lines != count:
        raise RuntimeError(f"journalctl wrote {lines} entries for {count}")
    return {"entries_s": count / elapsed, "seconds": elapsed}


def run(ctx: Context) -> dict:
    if not os.access(JOURNAL_REMOTE, os.X_OK) or shutil.which("journalctl") is None:
        return {"not_available": "systemd-journal-remote or journalctl missing: run `make system-deps`"}
    base = ctx.work / "journald"
    shutil.rmtree(base, ignore_errors=True)
    count = min(ctx.lines, env_int("BENCH_JOURNAL_ENTRIES", 300_000))
    journal = base / "journal"
    info = write_journal(ctx, journal, count)
    raw, shipped, baseline = [], [], []
    for i in range(ctx.runs):
        raw.append(journalctl_alone(journal, count))
        run_dir = base / f"journald-{i}"
        run_dir.mkdir(parents=True)
        shipped.append(one_run(ctx, "journald", run_dir, inputs=[{"type": "journald", "directory": str(journal)}],
                               lines=count))
        run_dir = base / f"json-{i}"
        run_dir.mkdir(parents=True)
        baseline.append(one_run(ctx, "json", run_dir))
    shutil.rmtree(base, ignore_errors=True)
    journald, json_ = summarize(shipped, digits=2), summarize(baseline, digits=2)
    return {**info, "journalctl_entries_s": summarize(raw, digits=2)["entries_s"], "journald": journald,
            "json": json_, "vs_json": round(journald["lines_s"] / json_["lines_s"], 3)}
