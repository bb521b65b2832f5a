"""A real journal for the journald tests: `systemd-journal-remote` (Debian's package, installed
by `make system-deps`) writing a journal directory from journal export format on its stdin,
one entry at a time, while the shipper reads the directory with journalctl.

Export format: `FIELD=value\\n` lines, an empty line after each entry; a value that is not
printable text is written as `FIELD\\n`, its length (64-bit little-endian) and the bytes.
"""

from __future__ import annotations

import struct
import subprocess
import time
from pathlib import Path

from tests.helpers import wait_until

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "0123456789abcdef0123456789abcdef"
ROTATION_FIELDS = 300  # distinct field names past the journal's field hash table (333 * 3/4): it rotates


def export(fields: dict[str, str | bytes], realtime: int, monotonic: int) -> bytes:
    """One entry in journal export format."""
    out = [b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n" % (realtime, monotonic,
                                                                                 BOOT_ID.encode())]
    for name, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        if isinstance(value, str) and "\n" not in value:
            out.append(name.encode() + b"=" + data + b"\n")
        else:
            out.append(name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
    return b"".join(out) + b"\n"


class JournalFeeder:
    """Appends entries to `directory`'s journal (remote.journal) through one journal-remote process."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.written = 0
        self.log = open(directory.parent / f"journal-remote-{directory.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([JOURNAL_REMOTE, f"--output={directory / 'remote.journal'}", "-"],
                                     stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT)

    def write(self, entries: list[dict[str, str | bytes]]) -> None:
        assert self.proc.stdin is not None
        now = int(time.time() * 1e6)
        data = b"".join(export(fields, now + i, self.written + i + 1) for i, fields in enumerate(entries))
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        self.written += len(entries)

    def rotate(self, message: str) -> None:
        """Write one entry (`message`) with so many field names that the next entry goes to a new
        file: the journal's own rotation, keeping the sequence numbers going."""
        self.write([{"MESSAGE": message, **{f"ROTATE_{k}": "x" for k in range(ROTATION_FIELDS)}}])

    def close(self) -> None:
        """Let journal-remote write what it has and exit."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait(30)
        self.log.close()

    def wait_stored(self, timeout: float = 30.0) -> None:
        """Wait until journalctl reads every entry written so far (journal-remote writes them a moment later)."""
        wait_until(lambda: journal_count(self.directory) >= self.written, timeout=timeout,
                   message=f"{self.written} entries in {self.directory}")

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.journal"))


def journal_count(directory: Path) -> int:
    """How many entries journalctl reads in the directory now."""
    out = subprocess.run(["journalctl", f"--directory={directory}", "--output=json", "--output-fields=__CURSOR",
                          "--no-pager"], capture_output=True, check=False).stdout
    return out.count(b"\n")
