"""The journalctl reader on its own, against a real journal directory (systemd-journal-remote):
rewinds, a cursor journalctl cannot read, entries over the line bound."""

from __future__ import annotations

from pathlib import Path

from common.config import parse_config
from shipper.journal import JournalReader
from shipper.journal_entry import Entry
from tests.helpers import wait_until
from tests.journal_support import JournalFeeder


def reader(directory: Path, cursor: str | None = None, counts: dict[str, int] | None = None,
           **options: str) -> JournalReader:
    cfg = parse_config({"shipper": {"inputs": [{"type": "journald", "directory": str(directory), **options}]}})
    counts = counts if counts is not None else {}

    def count(name: str):
        return lambda n=1: counts.__setitem__(name, counts.get(name, 0) + n)
    return JournalReader("test", "h", cfg.shipper.inputs[0], cursor, False, count("skipped"),
                         count("oversized")).start()


def take_all(r: JournalReader, count: int) -> list[Entry]:
    got: list[Entry] = []
    wait_until(lambda: got.extend(r.take(1000)) or len(got) >= count, timeout=30, message=f"{count} entries")
    return got


def feed(directory: Path, messages: list[str | bytes]) -> None:
    feeder = JournalFeeder(directory)
    feeder.write([{"MESSAGE": m} for m in messages])
    feeder.close()


def test_a_rewind_reads_again_after_the_cursor_it_is_given_and_drops_what_was_buffered(tmp_path):
    feed(tmp_path / "j", [f"m{i}" for i in range(50)])
    r = reader(tmp_path / "j")
    try:
        first = take_all(r, 50)
        assert [e.row[3] for e in first] == [f"m{i}" for i in range(50)]
        r.rewind(first[19].cursor)  # the broker confirmed 20 of them
        again = take_all(r, 30)
        assert [e.row[3] for e in again] == [f"m{i}" for i in range(20, 50)]
        assert [e.row[0] for e in again] == [e.row[0] for e in first[20:]], "same entries, same ids"
    finally:
        r.close()


def test_a_cursor_journalctl_cannot_read_is_logged_and_the_journal_read_from_its_start(tmp_path, caplog):
    feed(tmp_path / "j", ["a", "b", "c"])
    r = reader(tmp_path / "j", cursor="not-a-cursor")
    try:
        assert [e.row[3] for e in take_all(r, 3)] == ["a", "b", "c"]
    finally:
        r.close()
    assert "cannot seek to the cursor not-a-cursor" in caplog.text


def test_an_entry_over_the_line_bound_is_skipped_and_counted_and_the_next_ones_are_read(tmp_path):
    # max_line_bytes 1 KiB: JSON lines over 4 KiB + 1 MiB are skipped; a 2 MiB message is one
    feed(tmp_path / "j", ["before", "x" * (2 << 20), "after", bytes(range(256)) * 8])
    counts: dict[str, int] = {}
    r = reader(tmp_path / "j", counts=counts, max_line_bytes="1KiB")
    try:
        got = take_all(r, 3)
    finally:
        r.close()
    assert [e.row[3] for e in got[:2]] == ["before", "after"]
    binary = got[2].row
    assert len(binary[3].encode()) >= 1024 and "max_line_bytes (1024)" in binary[6], "cut, not skipped"
    assert counts == {"oversized": 1}
