"""deploy/: the example configs, systemd units, compose file and RabbitMQ topology are valid as shipped."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from common.amqp import DLX_SUFFIX, REQUEUE_SUFFIX, queue_arguments
from common.config import AmqpConfig, load_config
from shipper.parsers import build_parser
from tests.helpers import REPO_ROOT, run_opslog

DEPLOY = REPO_ROOT / "deploy"
EXAMPLE_CONFIGS = sorted((DEPLOY / "config").glob("*.yaml")) + [DEPLOY / "compose" / "opslog.yaml"]
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted((DEPLOY / "systemd").glob("*.target"))
OPSLOG_PATH = "/opt/opslog/bin/opslog"


def env_example() -> dict[str, str]:
    """The variables of deploy/systemd/opslog.env.example, as systemd's EnvironmentFile reads them."""
    values = {}
    for line in (DEPLOY / "systemd" / "opslog.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def real_env() -> dict[str, str]:
    """The environment file as an operator fills it in: a random value for every secret."""
    return {name: secrets.token_hex(32) for name in env_example()}


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda p: p.name)
def test_example_config_passes_check_config_once_the_secrets_are_set(path, tmp_path):
    proc = run_opslog("check-config", config=path, log_dir=tmp_path, env=real_env())
    assert proc.wait(timeout=60) == 0, proc.output()
    assert f"{path}: OK" in proc.output()


def test_check_config_refuses_the_placeholders_of_the_example_environment_file(tmp_path):
    # With them, `Bearer change-me` would open the API and anyone could sign a session cookie.
    proc = run_opslog("check-config", config=DEPLOY / "config" / "web.yaml", log_dir=tmp_path, env=env_example())
    assert proc.wait(timeout=60) == 1, proc.output()
    for key in ("mongo.uri: the password is a placeholder", "webui.api_tokens[0]: is a placeholder",
                "webui.secret_key: is a placeholder"):
        assert key in proc.output(), proc.output()


def test_every_secret_the_example_configs_use_is_in_the_environment_file():
    used = set()
    for path in EXAMPLE_CONFIGS:
        used |= {m.group(1) for m in re.finditer(r"\$\{([A-Za-z_]\w*)\}", path.read_text())}
    assert used <= set(env_example()), f"missing from opslog.env.example: {sorted(used - set(env_example()))}"


SAMPLES = {
    ("shipper-web.yaml", "/var/log/nginx/error.log"): (
        '2024/01/31 10:00:00 [error] 1234#1234: *5 open() "/srv/www/x" failed (2: No such file or directory), '
        'client: 10.0.0.1, server: shop, request: "GET /x HTTP/1.1"', "error"),
    ("shipper-web.yaml", "/var/log/nginx/access.log"): (
        '10.0.0.1 - - [31/Jan/2024:10:00:00 +0100] "GET /x HTTP/1.1" 404 153 "-" "curl/8.5"', "warning"),
    ("shipper-db.yaml", "/var/log/syslog"): (
        "Jan 31 10:00:00 db-01 sshd[812]: Accepted publickey for deploy from 10.0.0.9 port 51234", None),
    ("shipper-db.yaml", "/var/log/postgresql/postgresql-15-main.log"): (
        "2024-01-31 10:00:00.123 CET [4711] app@shop ERROR:  duplicate key value violates unique constraint",
        "error"),
    ("shipper-k8s.yaml", "/var/log/billing/billing.log"): (
        'ts=2024-01-31T10:00:00.5Z level=error msg="charge failed" order=42 took=1.5s', "error"),
}


@pytest.mark.parametrize(("config_name", "path"), list(SAMPLES), ids=[p for _, p in SAMPLES])
def test_example_inputs_read_time_and_level_from_a_typical_line(config_name, path):
    config = load_config(str(DEPLOY / "config" / config_name), env=real_env())
    from shipper.backfill import input_for  # the rule `opslog import` uses: path -> input
    inp = input_for(config, path)
    assert inp is not None, f"no input of {config_name} matches {path}"
    line, level = SAMPLES[(config_name, path)]
    parsed = build_parser(inp)(line)
    assert parsed.error is None and parsed.ts is not None, parsed
    assert parsed.level == level or (level is None and parsed.level in (None, "info")), parsed


def unit_copies(tmp_path: Path) -> tuple[Path, list[str]]:
    """The units with ExecStart pointing at a stub (verify wants an executable there), and an
    instance of the consumer template."""
    stub = tmp_path / "bin" / "opslog"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    names = []
    for unit in UNITS:
        text = unit.read_text().replace(OPSLOG_PATH, str(stub))
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
        names.append(name)
    return tmp_path, names


def test_units_run_opslog_as_its_own_user_with_check_config_first():
    for unit in (u for u in UNITS if u.suffix == ".service"):
        text = unit.read_text()
        config = re.search(r"^ExecStart=\S+ \w+ -c (\S+)$", text, re.M)
        assert config, f"{unit.name}: ExecStart runs `opslog COMMAND -c FILE`"
        assert f"ExecStartPre={OPSLOG_PATH} check-config -c {config.group(1)}" in text
        for setting in ("User=opslog", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                        "ProtectHome=yes", "PrivateTmp=yes", "EnvironmentFile=/etc/opslog/opslog.env"):
            assert f"\n{setting}\n" in text, f"{unit.name}: {setting}"
    shipper = (DEPLOY / "systemd" / "opslog-shipper.service").read_text()
    assert "SupplementaryGroups=adm" in shipper and "ReadWritePaths=/var/lib/opslog/shipper" in shipper
    shipper_cfg = load_config(str(DEPLOY / "config" / "shipper-web.yaml"), env=real_env())
    assert shipper_cfg.shipper.state_dir == "/var/lib/opslog/shipper", "the one path the unit lets it write"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    directory, names = unit_copies(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", *names], cwd=directory, capture_output=True, text=True,
                            timeout=120, check=False)
    # verify exits 0 on some warnings; any line about our units is a problem to fix.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if str(directory) in line
            or any(name in line for name in names)]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


def test_compose_file_fits_the_compose_specification():
    """Checked against the Compose Specification's models (compose-pydantic), which need no
    Docker: a misspelt key or a wrong shape fails here, as `docker compose config` would."""
    from compose_pydantic import ComposeSpecification
    from pydantic import ValidationError

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # anchors and merge keys resolved
    spec = {key: value for key, value in compose.items() if not key.startswith("x-")}  # extension fields
    ComposeSpecification.model_validate(spec)
    misspelt = {**spec, "services": {**spec["services"], "web": {**spec["services"]["web"], "prots": ["8080"]}}}
    with pytest.raises(ValidationError, match="prots"):
        ComposeSpecification.model_validate(misspelt)


def test_compose_file_runs_the_pipeline_from_one_checked_config():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"rabbitmq", "mongo", "consumer", "web", "shipper", "demo-writer"} <= set(services)
    commands = {name: svc.get("command") for name, svc in services.items()}
    assert commands["consumer"][0] == "consume" and commands["web"][0] == "web" and commands["shipper"][0] == "ship"
    for name in ("consumer", "web", "shipper", "db-init"):
        mounts = services[name].get("volumes") or compose["x-opslog"]["volumes"]
        assert "./compose/opslog.yaml:/etc/opslog/opslog.yaml:ro" in mounts, name
    assert (DEPLOY / compose["x-opslog"]["build"]["dockerfile"].removeprefix("deploy/")).is_file()
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_rabbitmq_definitions_declare_what_opslog_declares():
    definitions = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    cfg = load_config(str(DEPLOY / "config" / "consumer.yaml"), env=real_env()).amqp
    assert cfg.exchange == "opslog" and cfg.urls[0].endswith("/opslog")
    queues = {q["name"]: q for q in definitions["queues"]}
    assert queues[cfg.queue]["arguments"] == queue_arguments(AmqpConfig(delivery_limit=cfg.delivery_limit), True)
    assert queues[cfg.dead_letter_queue]["arguments"] == {"x-queue-type": "quorum"}
    assert all(q["durable"] and q["vhost"] == "opslog" for q in queues.values())
    exchanges = {e["name"]: e["type"] for e in definitions["exchanges"]}
    assert exchanges == {cfg.exchange: "fanout", cfg.exchange + DLX_SUFFIX: "fanout",
                         cfg.exchange + REQUEUE_SUFFIX: "fanout"}
    bindings = {(b["source"], b["destination"]) for b in definitions["bindings"]}
    assert bindings == {(cfg.exchange, cfg.queue), (cfg.exchange + DLX_SUFFIX, cfg.dead_letter_queue),
                        (cfg.exchange + REQUEUE_SUFFIX, cfg.queue)}


def test_db_init_creates_the_indexes_and_retention_once_and_again(tmp_path, write_config, mongo_db):
    config = write_config(tmp_path, mongo={"retention": "30d"})
    for _ in range(2):  # idempotent
        proc = run_opslog("db", "init", config=config)
        assert proc.wait(timeout=60) == 0, proc.output()
        assert "indexes ready; records expire 2592000s after arrival" in proc.output()
    indexes = mongo_db.logs.index_information()
    assert {"ts", "host_ts"} <= set(indexes)
    ttl = [i for i in indexes.values() if i["key"] == [("received_at", 1)]]
    assert [i.get("expireAfterSeconds") for i in ttl] == [30 * 86400]


def test_db_init_says_why_when_the_database_is_unreachable(tmp_path):
    config = tmp_path / "opslog.yaml"
    config.write_text("mongo: {uri: 'mongodb://127.0.0.1:1/opslog'}\n")
    proc = run_opslog("db", "init", config=config)
    assert proc.wait(timeout=60) == 1
    assert "database unavailable" in proc.output() and "Traceback" not in proc.output()
