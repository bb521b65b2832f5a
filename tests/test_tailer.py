"""Reading one file: complete lines with offsets, partial lines held, long lines capped."""

from __future__ import annotations

import os

from shipper.tailer import TailedFile, fingerprint


def open_file(path, max_line_bytes=1 << 20) -> TailedFile:
    tailed = TailedFile.open(str(path), max_line_bytes)
    assert tailed is not None
    return tailed


def test_lines_come_with_their_byte_offsets_and_without_line_endings(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"one\r\ntwo\nthree\n")
    lines = open_file(path).read_lines()
    assert [(ln.offset, ln.end, ln.raw) for ln in lines] == [(0, 5, b"one"), (5, 9, b"two"), (9, 15, b"three")]


def test_last_line_without_newline_is_held_until_it_completes(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"first\nsec")
    tailed = open_file(path)
    assert [ln.raw for ln in tailed.read_lines()] == [b"first"]
    with open(path, "ab") as fh:
        fh.write(b"ond\n")
    assert [(ln.offset, ln.raw) for ln in tailed.read_lines()] == [(6, b"second")]


def test_held_partial_line_is_shipped_when_the_file_is_released(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"first\nlast words")
    tailed = open_file(path)
    tailed.read_lines()
    partial = tailed.take_partial()
    assert partial is not None and (partial.offset, partial.raw) == (6, b"last words")


def test_over_long_line_is_truncated_flagged_and_reading_goes_on(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"short\n" + b"x" * 5000 + b"\nafter\n")
    tailed = open_file(path, max_line_bytes=1000)
    lines = []
    while chunk := tailed.read_lines(max_bytes=700):
        lines += chunk
    lines += tailed.read_lines()
    assert [ln.raw[:5] for ln in lines] == [b"short", b"xxxxx", b"after"]
    assert lines[1].truncated and len(lines[1].raw) == 1000 and lines[1].offset == 6
    assert lines[2].offset == 5007 and not lines[2].truncated


def test_rewind_reads_unconfirmed_lines_again(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"a\nb\nc\n")
    tailed = open_file(path)
    tailed.read_lines()
    tailed.confirm(2)
    tailed.rewind()
    assert [ln.raw for ln in tailed.read_lines()] == [b"b", b"c"]


def test_fingerprint_waits_for_a_complete_first_line_and_then_stays_put(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"no newline yet")
    assert TailedFile.open(str(path), 1000) is None
    path.write_bytes(b"header line\n")
    tailed = open_file(path)
    before = tailed.fingerprint
    with open(path, "ab") as fh:
        fh.write(b"more\n" * 100)
    assert fingerprint(tailed.fd) == before


def test_only_a_regular_file_reached_without_a_symlink_is_opened(tmp_path):
    """O_NOFOLLOW guards the last component; below `root` each directory is opened without
    following too, so a directory swapped for a symlink after the walk is refused."""
    secret = tmp_path / "etc" / "secret.log"
    secret.parent.mkdir()
    secret.write_bytes(b"password=hunter2\n")
    logs = tmp_path / "logs"
    (logs / "app").mkdir(parents=True)
    (logs / "app" / "ok.log").write_bytes(b"fine\n")
    (logs / "link.log").symlink_to(secret)
    (logs / "swapped").symlink_to(secret.parent, target_is_directory=True)
    os.mkfifo(logs / "pipe.log")
    assert open_file(logs / "app" / "ok.log").fingerprint is not None
    assert TailedFile.open(str(logs / "app" / "ok.log"), 1000, root=str(logs)) is not None
    assert TailedFile.open(str(logs / "link.log"), 1000) is None
    assert TailedFile.open(str(logs / "pipe.log"), 1000) is None, "a FIFO is refused, and without blocking"
    assert os.path.exists(logs / "swapped" / "secret.log")
    assert TailedFile.open(str(logs / "swapped" / "secret.log"), 1000, root=str(logs)) is None
