"""The offsets registry: atomic, versioned, and safe when lost or corrupt."""

from __future__ import annotations

import json
import logging

from shipper.registry import Registry


def test_saved_offsets_survive_a_restart(tmp_path):
    registry = Registry(str(tmp_path)).load()
    assert not registry.existed
    registry.confirm("1:2", "/var/log/a.log", "fp", 1234)
    registry.save()
    again = Registry(str(tmp_path)).load()
    assert again.existed and again.get("1:2").offset == 1234
    assert json.loads((tmp_path / "registry.json").read_text())["version"] == 2
    assert not list(tmp_path.glob("*.tmp")), "the temp file is renamed into place"


def test_corrupt_registry_is_kept_aside_logged_and_files_are_read_again(tmp_path, caplog):
    (tmp_path / "registry.json").write_text('{"version": 1, "files": {"1:2": {"path": ')
    with caplog.at_level(logging.ERROR):
        registry = Registry(str(tmp_path)).load()
    assert registry.entries == {} and registry.existed, "existed: start_at=end must not skip lines now"
    assert "unreadable" in caplog.text
    assert list(tmp_path.glob("registry.json.corrupt-*"))


def test_save_is_throttled_but_never_loses_the_dirty_flag(tmp_path):
    registry = Registry(str(tmp_path)).load()
    registry.confirm("1:2", "/a", "fp", 10)
    registry.save()
    registry.confirm("1:2", "/a", "fp", 20)
    registry.save(min_interval=3600)
    assert registry.dirty
    registry.save()
    assert Registry(str(tmp_path)).load().get("1:2").offset == 20


def test_a_journal_input_removed_from_the_config_keeps_its_cursor_for_an_hour_then_loses_it(tmp_path):
    registry = Registry(str(tmp_path)).load()
    registry.confirm_journal("journal:system", "s=a;i=10;b=b;m=1;t=2;x=3", 16)
    registry.confirm_journal("journal:system#1", "s=a;i=12;b=b;m=1;t=2;x=3", 18)
    registry.prune_journals(["journal:system"])  # #1 is gone from the config (a start or a reload)
    registry.save()
    registry = Registry(str(tmp_path)).load()
    assert registry.journal_cursor("journal:system#1") is not None, "put back within the hour: same position"
    registry.prune_journals(["journal:system", "journal:system#1"])
    assert "unused_since" not in registry.journals["journal:system#1"], "configured again: the clock stops"
    registry.prune_journals(["journal:system"])
    registry.journals["journal:system#1"]["unused_since"] -= 3601
    registry.prune_journals(["journal:system"])
    registry.save()
    registry = Registry(str(tmp_path)).load()
    assert registry.journal_cursor("journal:system#1") is None
    assert registry.journal_cursor("journal:system") == "s=a;i=10;b=b;m=1;t=2;x=3"
