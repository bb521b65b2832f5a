"""How the shipper tells files apart and finds copies, and where it watches for new ones."""

from __future__ import annotations

import json
import os
import sys

from common.config import InputConfig, ShipperConfig
from shipper.files import Files, Input
from shipper.registry import Registry
from shipper.tailer import TailedFile, file_key
from shipper.watcher import PollWatcher, make_watcher, watch_roots


def test_a_version_1_registry_still_loads_and_is_saved_as_the_current_version(tmp_path):
    (tmp_path / "registry.json").write_text(json.dumps(
        {"version": 1, "files": {"1:2": {"path": "/a.log", "fingerprint": "fp", "offset": 42, "updated": 1.0}}}))
    registry = Registry(str(tmp_path)).load()
    assert registry.get("1:2").offset == 42 and registry.get("1:2").tail is None
    registry.confirm("1:2", "/a.log", "fp", 50, "t")
    registry.save()
    assert json.loads((tmp_path / "registry.json").read_text())["version"] == 2


def test_a_copy_is_recognised_by_fingerprint_and_the_bytes_before_the_confirmed_offset(tmp_path):
    original = tmp_path / "app.log"
    original.write_bytes(b"header\n" + b"".join(b"line %d\n" % n for n in range(100)))
    tailed = TailedFile.open(str(original), 1 << 20)
    assert tailed is not None and tailed.fingerprint is not None
    confirmed = 7 + sum(len(b"line %d\n" % n) for n in range(60))
    registry = Registry(str(tmp_path / "state")).load()
    registry.confirm(tailed.key, str(original), tailed.fingerprint, confirmed, tailed.tail_hash(confirmed))
    registry.retire(tailed.key)  # the original was truncated

    copy = tmp_path / "app.log.1"
    copy.write_bytes(original.read_bytes())
    lookalike = tmp_path / "other.log"  # same first line, other content
    lookalike.write_bytes(b"header\n" + b"".join(b"other %d\n" % n for n in range(100)))
    for path, expected in ((copy, confirmed), (lookalike, None)):
        candidate = TailedFile.open(str(path), 1 << 20)
        assert candidate is not None and candidate.fingerprint == tailed.fingerprint
        found = registry.copy_offset(candidate.fingerprint, candidate.size, candidate.tail_hash, exclude=candidate.key)
        assert (found.offset if found else None) == expected, path.name
        candidate.close()
    tailed.close()


def test_new_content_under_a_known_inode_is_read_from_the_start_and_the_old_entry_retired(tmp_path):
    # A deleted file's inode handed to a new file: set up as the registry sees it, whether or not
    # this filesystem reuses inodes. A stale offset would skip the new file's head.
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(b"new %d\n" % n for n in range(300)))
    key = file_key(os.stat(log))
    registry = Registry(str(tmp_path / "state")).load()
    registry.confirm(key, str(log), "0123456789abcdef", 1000, "tail-of-the-old-content")
    cfg = InputConfig(paths=(str(log),), app="inode")
    files = Files(ShipperConfig(inputs=(cfg,)), registry, [Input(cfg)])
    files.scan(first_start=False)
    file = files.tracked[key].file
    assert (file.offset, file.confirmed) == (0, 0), "the new content is read from its start"
    assert registry.get(key) is None and [e.offset for e in registry.retired] == [1000], \
        "the old content's entry is retired (a copy of it can still find it), not inherited"
    files.close()


def test_watch_roots_are_the_fixed_directories_of_the_globs_recursive_when_a_directory_part_has_wildcards():
    assert watch_roots(["/var/log/nginx/*.log"]) == {"/var/log/nginx": False}
    assert watch_roots(["/var/log/**/*.log", "/var/log/syslog"]) == {"/var/log": True}
    assert watch_roots(["/srv/app-*/logs/current"]) == {"/srv": True}


def test_watch_auto_falls_back_to_polling_where_inotify_cannot_be_had(monkeypatch):
    monkeypatch.setitem(sys.modules, "inotify_simple", None)  # import fails, as on a system without inotify
    watcher = make_watcher("auto", 0.5, ["/var/log/*.log"])
    assert isinstance(watcher, PollWatcher) and watcher.kind == "poll"
    assert watcher.scan_due()
    watcher.scanned()
    assert not watcher.scan_due()
