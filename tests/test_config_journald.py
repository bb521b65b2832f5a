"""`type: journald` inputs in the config: what they take, and every bad key named."""

from __future__ import annotations

import pytest
import yaml

from common.config import ConfigError, JournaldConfig, parse_config
from tests.helpers import run_opslog


def inputs(*items: dict) -> dict:
    return {"shipper": {"inputs": list(items)}}


def test_a_journald_input_takes_units_identifiers_priority_matches_directory_start_at_and_app(tmp_path):
    config = parse_config(inputs(
        {"type": "journald", "units": ["nginx.service", "ssh.service"], "identifiers": "CRON",
         "priority": "warning", "matches": ["_TRANSPORT=kernel", "CONTAINER_NAME=web"],
         "directory": str(tmp_path / "journal"), "start_at": "end", "app": "system"},
        {"paths": ["/var/log/app.log"], "app": "app"}))
    journald, files = config.shipper.inputs
    assert journald.type == "journald" and journald.app == "system" and journald.start_at == "end"
    assert journald.journald == JournaldConfig(units=("nginx.service", "ssh.service"), identifiers=("CRON",),
                                               priority=4, matches=("_TRANSPORT=kernel", "CONTAINER_NAME=web"),
                                               directory=str(tmp_path / "journal"))
    assert files.type == "file" and files.journald is None, "type: file stays the default"


@pytest.mark.parametrize("priority, number", [(0, 0), ("3", 3), ("err", 3), ("error", 3), ("crit", 2),
                                              ("notice", 5), ("DEBUG", 7)])
def test_priority_takes_journalctl_names_and_numbers(priority, number):
    config = parse_config(inputs({"type": "journald", "priority": priority}))
    assert config.shipper.inputs[0].journald.priority == number


def test_a_journald_input_needs_nothing_but_its_type():
    cfg = parse_config(inputs({"type": "journald"})).shipper.inputs[0]
    assert cfg.journald == JournaldConfig() and cfg.app == "" and cfg.start_at == "beginning"


def test_every_bad_journald_key_is_named():
    with pytest.raises(ConfigError) as info:
        parse_config(inputs({"type": "journald", "priority": 8, "matches": ["nginx"], "units": [],
                             "start_at": "middle", "paths": ["/var/log/*.log"], "format": "json"},
                            {"type": "syslogd"}))
    problems = "\n".join(info.value.problems)
    for key in ("inputs[0].priority", "inputs[0].matches", "inputs[0].units", "inputs[0].start_at",
                "inputs[0].paths: unknown key", "inputs[0].format: unknown key", "inputs[1].type"):
        assert f"shipper.{key}" in problems, problems


@pytest.mark.parametrize("match", ["lower=case", "__CURSOR=x", "9LIVES=x", "NO_EQUALS", "=value"])
def test_a_match_must_be_an_upper_case_field_name_and_a_value(match):
    with pytest.raises(ConfigError) as info:
        parse_config(inputs({"type": "journald", "matches": [match]}))
    assert "shipper.inputs[0].matches" in info.value.problems[0]


def test_check_config_names_the_bad_journald_key_and_accepts_a_good_input(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(inputs({"type": "journald", "priority": "loud"})))
    proc = run_opslog("check-config", config=bad)
    assert proc.wait(timeout=60) == 1
    assert "shipper.inputs[0].priority:" in proc.output()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(inputs({"type": "journald", "units": ["ssh.service"], "priority": "info"})))
    proc = run_opslog("check-config", config=good)
    assert proc.wait(timeout=60) == 0, proc.output()
