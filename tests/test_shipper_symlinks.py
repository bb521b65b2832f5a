"""The shipper reads only the files it was told to read: no symlink out of the watched
paths, no FIFO that blocks it, no endless walk through a symlink loop, one file once."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from common.config import ConfigError, InputConfig, ShipperConfig, parse_config
from shipper.discovery import Finder
from shipper.files import Files, Input
from shipper.registry import UNSEEN_TTL, Registry
from shipper.tailer import file_key
from tests.helpers import run_opslog, wait_until
from tests.shipper_support import QueueReader, append, numbered, running_shipper, shipper_config

SECRET = "OPSLOG_AMQP_URL=amqp://shipper:hunter2@broker/"


@pytest.fixture
def reader(amqp_url, names):
    queue_reader = QueueReader(amqp_url, names.queue)
    yield queue_reader
    queue_reader.close()


def secret_file(tmp_path: Path) -> Path:
    etc = tmp_path / "etc" / "opslog"
    etc.mkdir(parents=True)
    (etc / "opslog.env").write_text(SECRET + "\n")
    (etc / "secrets.log").write_text(SECRET + " (a .log file in a symlinked directory)\n")
    return etc / "opslog.env"


def records_sent(reader: QueueReader) -> int:
    """Records that reached the queue, each re-send counted."""
    return sum(reader.received.sent.values())


def test_a_symlink_to_a_secret_in_a_watched_directory_is_never_shipped(tmp_path, write_config, reader):
    secret = secret_file(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "steal.log").symlink_to(secret)
    (logs / "escape").symlink_to(secret.parent, target_is_directory=True)  # a symlinked directory under **
    append(logs / "app.log", numbered("app", 0, 5))
    config = shipper_config(write_config, tmp_path, [{"paths": [str(logs / "**" / "*.log")], "app": "a"}])
    with running_shipper(config) as shipper:
        reader.wait_for(5)
        append(logs / "app.log", numbered("app", 5, 5))  # read after several full scans
        reader.wait_for(10)
        received = reader.settle(0.5)
    assert not [m for m in received.messages() if "hunter2" in m], "a secret was shipped"
    received.assert_exactly_once(numbered("app", 0, 10))
    assert f"{logs / 'steal.log'} is a symlink: not read" in shipper.output()


def test_follow_symlinks_ships_a_link_only_when_its_real_path_matches_the_globs(tmp_path, write_config, reader):
    # Kubernetes' layout: /var/log/containers/*.log are symlinks into /var/log/pods/.
    secret = secret_file(tmp_path)
    pod_log = tmp_path / "pods" / "shop_web-7f9c_0a1b" / "web" / "0.log"
    pod_log.parent.mkdir(parents=True)
    append(pod_log, numbered("pod", 0, 20))
    containers = tmp_path / "containers"
    containers.mkdir()
    named = containers / "web-7f9c_shop_web-0123abcd.log"
    named.symlink_to(pod_log)
    (containers / "steal.log").symlink_to(secret)
    config = shipper_config(write_config, tmp_path, [{
        "paths": [str(containers / "*.log"), str(tmp_path / "pods" / "**" / "*.log")],
        "app": "k8s", "follow_symlinks": True}])
    with running_shipper(config):
        reader.wait_for(20)
        append(pod_log, numbered("pod", 20, 5))
        reader.wait_for(25)
        received = reader.settle(0.5)
    received.assert_exactly_once(numbered("pod", 0, 25))
    assert records_sent(reader) == 25, "the link and its target are one file, shipped once"
    assert {r["source"] for r in received.by_id.values()} == {str(named)}, "under the name its first glob found"


def test_follow_symlinks_must_be_true_or_false(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"shipper": {"inputs": [{"paths": ["/x/*.log"], "app": "x", "follow_symlinks": "yes"}]}}, {})
    assert "shipper.inputs[0].follow_symlinks: must be true or false, got 'yes'" in err.value.problems


def test_a_fifo_swapped_in_for_a_watched_file_does_not_block_the_shipper(tmp_path, write_config, reader):
    logs = tmp_path / "logs"
    logs.mkdir()
    pipe = tmp_path / "pipe"  # outside the glob: linked into place, and kept to release a blocked open
    os.mkfifo(pipe)
    # Many files widen the window between a scan's type check and its open, where the swap lands.
    for n in range(150):
        append(logs / f"filler-{n:03d}.log", [f"filler {n}"])
    swapped = logs / "swapped.log"
    halt = threading.Event()

    def swap() -> None:
        spare = tmp_path / "spare"
        while not halt.is_set():
            os.link(pipe, spare)
            os.replace(spare, swapped)
            # a new regular file each time, without a complete first line: never taken for tailing,
            # so every scan that sees it tries to open the name again
            spare.write_bytes(b"not a complete line yet")
            os.replace(spare, swapped)

    config = shipper_config(write_config, tmp_path, [{"paths": [str(logs / "*.log")], "app": "f"}],
                            scan_interval="0.05s", watch="poll")
    swapper = threading.Thread(target=swap, daemon=True)
    with running_shipper(config):
        try:
            reader.wait_for(150)
            swapper.start()
            # Other files keep shipping while the name flips: a new file each round, so each round
            # takes scans (today's code blocks in some 7% of them, and for good).
            for n in range(20):
                append(logs / f"live-{n:02d}.log", numbered(f"live-{n:02d}", 0, 2))
                wait_until(lambda n=n: set(numbered(f"live-{n:02d}", 0, 2)) <= set(reader.poll().messages()),
                           timeout=10, message="lines of a new file while a FIFO is swapped in")
        finally:
            halt.set()
            if swapper.is_alive():
                swapper.join()
            try:  # release an open() blocked on the FIFO (today's code), so the shipper can be stopped
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


def test_a_symlink_loop_under_double_star_is_walked_once(tmp_path, write_config, reader):
    logs = tmp_path / "logs"
    (logs / "a").mkdir(parents=True)
    append(logs / "a" / "x.log", numbered("x", 0, 5))
    (logs / "self").symlink_to(".")
    (logs / "a" / "up").symlink_to("..")  # two loops: today's walk grows as 2^depth
    cfg = InputConfig(paths=(str(logs / "**" / "*.log"),), app="l")
    walk = Finder(cfg).find()
    assert [f.path for f in walk.found] == [str(logs / "a" / "x.log")]
    assert walk.complete and walk.entries <= 10, f"{walk.entries} directory entries read"

    config = shipper_config(write_config, tmp_path, [{"paths": list(cfg.paths), "app": "l"}])
    with running_shipper(config):
        reader.wait_for(5, timeout=20, message="the first scan finished")
        (logs / "b").mkdir()
        append(logs / "b" / "later.log", numbered("later", 0, 5))
        reader.wait_for(10, timeout=20, message="later scans finish too")
        received = reader.settle(0.5)
    received.assert_exactly_once(numbered("x", 0, 5) + numbered("later", 0, 5))
    assert {r["source"] for r in received.by_id.values()} == {str(logs / "a" / "x.log"), str(logs / "b" / "later.log")}


def test_two_names_of_one_file_ship_it_once_under_the_first(tmp_path, write_config, reader):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", numbered("one", 0, 10))
    os.link(logs / "a.log", logs / "b.log")
    config = shipper_config(write_config, tmp_path, [{"paths": [str(logs / "*.log")], "app": "h"}])
    with running_shipper(config):
        reader.wait_for(10)
        append(logs / "b.log", numbered("one", 10, 10))
        reader.wait_for(20)
        received = reader.settle(0.5)
    received.assert_exactly_once(numbered("one", 0, 20))
    assert records_sent(reader) == 20
    assert {r["source"] for r in received.by_id.values()} == {str(logs / "a.log")}, "one name, the first found"


def test_import_takes_a_file_named_twice_once_and_refuses_a_symlink(tmp_path, write_config):
    secret = secret_file(tmp_path)
    old = tmp_path / "old"
    old.mkdir()
    append(old / "app.log.1", numbered("old", 0, 10))
    os.link(old / "app.log.1", old / "app.log.2")
    (old / "app.log.3").symlink_to(secret)
    config = shipper_config(write_config, tmp_path, [{"paths": [str(old / "app.log")], "app": "i"}])
    refused = run_opslog("import", str(old / "app.log.3"), config=config)
    assert refused.wait(timeout=60) == 1
    assert "app.log.3: a symlink" in refused.output()
    proc = run_opslog("import", str(old / "app.log.1"), str(old / "app.log.2"), config=config)
    assert proc.wait(timeout=60) == 0, proc.output()
    assert "imported 10 records from 1 file(s)" in proc.output()


def test_a_walk_cut_at_its_bound_says_so_and_files_it_did_not_reach_keep_their_offsets(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(20):
        append(logs / f"{n:02d}.log", [f"line {n}"])
    cfg = InputConfig(paths=(str(logs / "*.log"),), app="b")
    walk = Finder(cfg, max_entries=5).find()
    assert not walk.complete and len(walk.found) < 20

    registry = Registry(str(tmp_path / "state"))
    far = os.stat(logs / "19.log")
    registry.confirm(file_key(far), str(logs / "19.log"), "f" * 16, far.st_size)
    registry.entries[file_key(far)].updated -= 2 * UNSEEN_TTL  # long unseen: a complete scan would drop it
    files = Files(ShipperConfig(inputs=(cfg,)), registry, [Input(cfg)])
    files.inputs[0].finder.max_entries = 5
    files.scan(first_start=False)
    assert registry.get(file_key(far)) is not None, "a file the walk did not reach is not taken for deleted"
    files.close()
