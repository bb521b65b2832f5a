"""Rotation, truncation and inode reuse while an application keeps writing: every line once."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from tests.helpers import run_opslog, stop, wait_until
from tests.shipper_support import (
    QueueReader,
    Writer,
    append,
    numbered,
    open_paths,
    running_shipper,
    shipper_config,
)


@pytest.fixture
def reader(amqp_url, names):
    queue_reader = QueueReader(amqp_url, names.queue)
    yield queue_reader
    queue_reader.close()


def shift(log, count):
    """app.log.N -> app.log.N+1, oldest first, as logrotate numbers its rotations."""
    for n in range(count, 0, -1):
        older = log.with_name(f"{log.name}.{n}")
        if older.exists():
            older.rename(log.with_name(f"{log.name}.{n + 1}"))


def rename_rotation(log):
    def rotate():
        shift(log, 5)
        log.rename(log.with_name(f"{log.name}.1"))
    return rotate


def copytruncate_rotation(log):
    def rotate():
        shift(log, 5)
        shutil.copyfile(log, log.with_name(f"{log.name}.1"))
        os.truncate(log, 0)
    return rotate


def write_and_rotate(writer, reader, rotation, rotations, reopen=True, late_lines=0):
    """Let the writer run and rotate `rotations` times, each time once the shipper has
    read from the current file (a file rotated away before any shipper saw it is out of
    anyone's reach), then stop the writer."""
    writer.start()
    current = 0  # index of the first line written to the current file
    for _ in range(rotations):
        wait_until(lambda start=current: len(writer.written) > start, message="the writer wrote to the new file")
        wait_until(lambda first=writer.written[current]: first in reader.poll().messages(), timeout=30,
                   message="the shipper read from the current file")
        time.sleep(0.2)
        writer.rotate(rotation, reopen=reopen, late_lines=late_lines)
        current = len(writer.written)
    time.sleep(0.3)
    return writer.finish()


@pytest.mark.parametrize("glob", ["app.log*", "app.log"], ids=["rotated-names-matched", "rotated-names-not-matched"])
def test_rename_rotation_under_continuous_writes_ships_every_line_once(tmp_path, write_config, reader, glob):
    log = tmp_path / "app.log"
    writer = Writer(log)
    config = shipper_config(write_config, tmp_path, [{"paths": [str(tmp_path / glob)], "app": "rot"}],
                            rotate_wait="1s")
    with running_shipper(config) as shipper:
        written = write_and_rotate(writer, reader, rename_rotation(log), rotations=4, late_lines=50)
        reader.wait_for(len(written), message="every line, rotated files read to their end")
        received = reader.settle(1.0)
    received.assert_exactly_once(written)
    if glob == "app.log":
        assert "released" in shipper.output(), "a rotated-away file is closed once read to its end"


def test_copytruncate_under_continuous_writes_ships_every_line_once_reading_copies_from_where_the_original_left_off(
        tmp_path, write_config, reader):
    log = tmp_path / "app.log"
    writer = Writer(log)
    config = shipper_config(write_config, tmp_path, [{"paths": [str(tmp_path / "app.log*")], "app": "ct"}])
    with running_shipper(config) as shipper:
        written = write_and_rotate(writer, reader, copytruncate_rotation(log), rotations=4, reopen=False)
        reader.wait_for(len(written))
        received = reader.settle(1.0)
    received.assert_exactly_once(written)
    assert "a copy of" in shipper.output()
    copies = {source for source, _ in received.sent if source != str(log)}
    assert copies, "the copies were read"
    assert not any(received.sent[copy, 0] for copy in copies), \
        "a copy is read from the original's confirmed offset, not from its start"


@pytest.mark.parametrize("keep", [0, 25], ids=["to-zero", "to-a-smaller-size"])
def test_truncation_restarts_the_file_at_zero_and_ships_what_is_written_after(tmp_path, write_config, reader, keep):
    log = tmp_path / "app.log"
    before = numbered("before", 0, 100)
    append(log, before)
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "trunc"}])
    with running_shipper(config) as shipper:
        reader.wait_for(100)
        kept_bytes = sum(len(line) + 1 for line in before[:keep])
        os.truncate(log, kept_bytes)
        after = numbered("after", 0, 50)
        append(log, after)
        reader.wait_for(150)
        received = reader.settle(1.0)
    received.assert_exactly_once(before + after)
    assert "was truncated" in shipper.output()
    offsets = sorted(r["offset"] for r in received.by_id.values() if r["message"].startswith("after"))
    assert offsets[0] == kept_bytes


def test_a_file_deleted_while_open_is_read_to_its_end(tmp_path, write_config, reader):
    log = tmp_path / "app.log"
    lines = numbered("doomed", 0, 50_000)
    append(log, lines)
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "del"}],
                            batch_max_records=500, rotate_wait="0.5s")
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: str(log) in open_paths(shipper.pid, tmp_path), interval=0.005, message="app.log open")
        shipper.send_signal(signal.SIGSTOP)  # hold it early in the file while the file goes away
        try:
            assert len(reader.poll().by_id) < len(lines), "the shipper must still be reading when the file is deleted"
            log.unlink()
        finally:
            shipper.send_signal(signal.SIGCONT)
        received = reader.wait_for(len(lines), timeout=90)
        wait_until(lambda: "(deleted)" in shipper.output(), message="released once read to its end")
        assert not any(p.startswith(str(log)) for p in open_paths(shipper.pid, tmp_path)), "its space is given back"
    finally:
        assert stop(shipper) == 0, shipper.output()
    received.assert_exactly_once(lines)
