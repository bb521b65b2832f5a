"""Which files are read, from where, and how many are held open."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.helpers import wait_until
from tests.shipper_support import QueueReader, append, numbered, open_paths, running_shipper, shipper_config


@pytest.fixture
def reader(amqp_url, names):
    queue_reader = QueueReader(amqp_url, names.queue)
    yield queue_reader
    queue_reader.close()


@pytest.mark.parametrize("watch", ["inotify", "poll"])
def test_a_new_file_in_a_watched_glob_is_found_and_read_from_its_start(tmp_path, write_config, reader, watch):
    logs = tmp_path / "logs"
    (logs / "web").mkdir(parents=True)
    append(logs / "web" / "first.log", ["first"])
    # With inotify the periodic scan is an hour away: only the watch can find the new files.
    scan_interval = "1h" if watch == "inotify" else "0.2s"
    config = shipper_config(write_config, tmp_path, [{"paths": [str(logs / "**" / "*.log")], "app": "w"}],
                            watch=watch, scan_interval=scan_interval)
    with running_shipper(config) as shipper:
        reader.wait_for(1)
        append(logs / "web" / "second.log", numbered("second", 0, 10))
        (logs / "api" / "v2").mkdir(parents=True)  # a directory made after the start, two levels deep
        append(logs / "api" / "v2" / "third.log", numbered("third", 0, 10))
        received = reader.wait_for(21, timeout=20)
    received.assert_exactly_once(["first", *numbered("second", 0, 10), *numbered("third", 0, 10)])
    assert f"files are noticed by {watch}" in shipper.output()


def test_globs_with_double_star_minus_exclude_globs(tmp_path, write_config, reader):
    logs = tmp_path / "logs"
    for rel in ("a.log", "deep/er/b.log", "deep/c.log.gz", "deep/debug.log", "other.txt"):
        (logs / rel).parent.mkdir(parents=True, exist_ok=True)
        append(logs / rel, [f"from {rel}"])
    config = shipper_config(write_config, tmp_path, [
        {"paths": [str(logs / "**" / "*.log*")], "exclude": ["*.gz", str(logs / "deep" / "debug.log")], "app": "g"}])
    with running_shipper(config):
        reader.wait_for(2)
        received = reader.settle(1.0)
    received.assert_exactly_once(["from a.log", "from deep/er/b.log"])


def test_start_at_end_applies_only_to_files_present_at_the_very_first_start(tmp_path, write_config, reader):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "old.log", numbered("history", 0, 100))
    config = shipper_config(write_config, tmp_path, [
        {"paths": [str(logs / "*.log")], "app": "s", "start_at": "end"}])
    with running_shipper(config):
        wait_until(lambda: (tmp_path / "shipper-state" / "registry.json").exists(), message="registry saved")
        append(logs / "old.log", numbered("appended", 0, 5))
        append(logs / "new.log", numbered("new-while-running", 0, 5))
        reader.wait_for(10)
    # A restart is not a first start: what was written meanwhile, to old and new files, is read.
    append(logs / "old.log", numbered("while-down", 0, 5))
    append(logs / "later.log", numbered("created-while-down", 0, 5))
    with running_shipper(config):
        reader.wait_for(20)
        received = reader.settle(1.0)
    received.assert_exactly_once(numbered("appended", 0, 5) + numbered("new-while-running", 0, 5)
                                 + numbered("while-down", 0, 5) + numbered("created-while-down", 0, 5))


def test_ignore_older_skips_what_old_files_hold_but_reads_what_is_written_to_them_later(tmp_path, write_config,
                                                                                       reader):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "stale.log", numbered("stale", 0, 50))
    two_days_ago = time.time() - 2 * 86400
    os.utime(logs / "stale.log", (two_days_ago, two_days_ago))
    append(logs / "fresh.log", numbered("fresh", 0, 5))
    config = shipper_config(write_config, tmp_path, [
        {"paths": [str(logs / "*.log")], "app": "i", "ignore_older": "1d"}])
    with running_shipper(config):
        reader.wait_for(5)
        reader.settle(0.5)
        append(logs / "stale.log", numbered("revived", 0, 3))
        reader.wait_for(8)
        received = reader.settle(1.0)
    received.assert_exactly_once(numbered("fresh", 0, 5) + numbered("revived", 0, 3))


def test_an_idle_file_is_closed_after_close_inactive_and_reopened_when_it_grows(tmp_path, write_config, reader):
    log = tmp_path / "quiet.log"
    append(log, numbered("burst", 0, 10))
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "c", "close_inactive": "0.5s"}])
    with running_shipper(config) as shipper:
        reader.wait_for(10)
        wait_until(lambda: str(log) not in open_paths(shipper.pid, tmp_path), message="idle file closed")
        append(log, numbered("burst", 10, 10))
        received = reader.wait_for(20)
        reader.settle(0.5)
        assert "saved offset" in shipper.output(), "reopened where it left off"
    received.assert_exactly_once(numbered("burst", 0, 20))


def test_no_more_than_max_open_files_are_open_and_every_file_is_still_read(tmp_path, write_config, reader):
    logs = tmp_path / "logs"
    logs.mkdir()
    expected = []
    for n in range(6):
        lines = numbered(f"file{n}", 0, 20)
        append(logs / f"f{n}.log", lines)
        expected += lines
    config = shipper_config(write_config, tmp_path, [{"paths": [str(logs / "*.log")], "app": "m",
                                                      "close_inactive": "0.3s"}], max_open_files=2)
    most_open = []
    with running_shipper(config) as shipper:
        done = threading.Event()

        def sample():
            while not done.is_set():
                most_open.append(len(open_paths(shipper.pid, logs)))
                time.sleep(0.01)
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            received = reader.wait_for(len(expected), timeout=30)
        finally:
            done.set()
            sampler.join()
    received.assert_exactly_once(expected)
    assert max(most_open) <= 2
