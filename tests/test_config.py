"""Config: every problem reported at once with its key path; environment overrides."""

from __future__ import annotations

import pytest

from common.config import load_config, parse_config
from common.errors import ConfigError
from tests.helpers import run_opslog

GOOD = {
    "amqp": {"url": "amqp://guest:guest@127.0.0.1:5672/%2F"},
    "mongo": {"uri": "mongodb://127.0.0.1:27017/logs"},
    "shipper": {"host": "web-01", "state_dir": "/tmp/x", "inputs": [{"paths": ["/var/log/*.log"], "app": "nginx"}]},
}

KEY = "3f9a1c0e5b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468"  # like `secrets.token_hex(32)`
TOKEN = "Zq3xV9pL0mW7sK2tR8yB5nC1"


def problems_of(data: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env or {})
    return info.value.problems


def test_defaults_fill_everything_a_minimal_config_leaves_out():
    cfg = parse_config(GOOD, {})
    assert cfg.mongo.database == "logs"
    assert cfg.shipper.inputs[0].format == "plain"
    assert cfg.shipper.inputs[0].start_at == "beginning"
    assert cfg.amqp.queue == "opslog.records" and cfg.amqp.dead_letter_queue == "opslog.dead"


def test_every_bad_key_is_reported_with_its_path():
    data = {
        "amqp": {"url": "http://nope", "exchnage": "x"},
        "mongo": {"uri": "mongodb://h/db", "retention": "forever"},
        "shipper": {"batch_max_records": 0, "inputs": [
            {"paths": ["/a"], "app": "a", "format": "xml"},
            {"paths": ["/b"], "format": "regex", "pattern": "(?P<x>a)\\1"},
            {"paths": ["/c"], "app": "c", "multiline": {"start_pattern": "("}},
        ]},
        "webui": {"listen": "8080", "auth": "password", "users": {"admin": "h"}},
    }
    problems = "\n".join(problems_of(data))
    for expected in ("amqp.url:", "amqp.exchnage: unknown key", "mongo.retention:", "shipper.batch_max_records:",
                     "shipper.inputs[0].format:", "shipper.inputs[1].app: is required",
                     "shipper.inputs[1].pattern:", "shipper.inputs[2].multiline.start_pattern:", "webui.listen:"):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"


def test_regex_input_needs_a_pattern_with_named_groups():
    problems = problems_of({"shipper": {"inputs": [
        {"paths": ["/a"], "app": "a", "format": "regex"},
        {"paths": ["/b"], "app": "b", "format": "regex", "pattern": "[0-9]+"}]}})
    assert any(p.startswith("shipper.inputs[0].pattern: is required") for p in problems)
    assert any(p.startswith("shipper.inputs[1].pattern:") and "named groups" in p for p in problems)


def test_environment_variables_expand_and_override():
    data = {**GOOD, "webui": {"auth": "password", "api_tokens": ["${TOKEN}"], "secret_key": "${SECRET:-" + KEY + "}"}}
    env = {"TOKEN": TOKEN, "OPSLOG_AMQP_URL": "amqp://u:p@rabbit-1:5672/%2F,amqp://u:p@rabbit-2:5672/%2F",
           "OPSLOG_MONGO_URI": "mongodb://db-1:27017/prod"}
    cfg = parse_config(data, env)
    assert cfg.webui.api_tokens == (TOKEN,) and cfg.webui.secret_key == KEY
    assert cfg.amqp.urls == ("amqp://u:p@rabbit-1:5672/%2F", "amqp://u:p@rabbit-2:5672/%2F")
    assert cfg.mongo.uri == "mongodb://db-1:27017/prod" and cfg.mongo.database == "prod"


def test_bad_url_in_the_environment_is_a_problem_naming_the_variable():
    env = {"OPSLOG_AMQP_URL": "http://rabbit:5672/", "OPSLOG_MONGO_URI": "db-1:27017/prod"}
    assert [p.split(":")[0] for p in problems_of(GOOD, env)] == ["OPSLOG_AMQP_URL (environment)",
                                                                 "OPSLOG_MONGO_URI (environment)"]


def test_unset_environment_variable_names_the_key_and_the_variable():
    problems = problems_of({**GOOD, "webui": {"secret_key": "${NOT_SET_ANYWHERE}", "auth": "none"}})
    assert problems == ["webui.secret_key: environment variable NOT_SET_ANYWHERE is not set"]


def test_yaml_syntax_error_is_one_clear_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("amqp: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert "not valid YAML" in info.value.problems[0]


def test_check_config_exits_1_and_names_each_bad_key(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("amqp:\n  url: 42\nshipper:\n  inputs:\n    - paths: ['/x']\n      format: yaml\n")
    proc = run_opslog("check-config", config=path)
    assert proc.wait(timeout=60) == 1
    out = proc.output()
    assert "amqp.url:" in out and "shipper.inputs[0].format:" in out and "shipper.inputs[0].app:" in out


def test_check_config_accepts_a_good_file(tmp_path):
    import yaml
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    proc = run_opslog("check-config", config=path)
    assert proc.wait(timeout=60) == 0, proc.output()


def test_placeholder_and_short_secrets_are_refused_with_their_key_path():
    data = {**GOOD, "amqp": {"url": ["amqp://opslog:change-me@mq1:5672/opslog", "amqp://u:p4ss@mq2:5672/opslog"]},
            "mongo": {"uri": "mongodb://opslog:change-me@db1:27017/opslog"},
            "webui": {"secret_key": "change-me-to-64-hex-characters-and-more",
                      "api_tokens": ["change-me", "a-short-token", TOKEN]}}
    problems = problems_of(data)
    assert [p.split(":")[0] for p in problems] == ["amqp.url", "mongo.uri", "webui.api_tokens[0]",
                                                  "webui.api_tokens[1]", "webui.secret_key"], problems
    assert "placeholder" in problems[2] and "13 characters long, at least 20" in problems[3]
    short = problems_of({**GOOD, "webui": {"secret_key": "0123456789abcdef0123456789abcde", "auth": "none"}})
    assert short == ["webui.secret_key: is 31 bytes long, at least 32 are needed "
                     "(python3 -c 'import secrets; print(secrets.token_hex(32))')"]


def test_proxy_header_auth_needs_trusted_proxies_as_cidrs():
    assert problems_of({**GOOD, "webui": {"auth": "proxy_header"}})[0].startswith(
        "webui.trusted_proxies: is required with auth: proxy_header")
    bad = problems_of({**GOOD, "webui": {"auth": "proxy_header", "trusted_proxies": ["10.0.0.0/8", "proxy-1"]}})
    assert bad == ["webui.trusted_proxies: must be IP addresses or CIDRs like 10.0.0.0/8, got 'proxy-1'"]
    cfg = parse_config({**GOOD, "webui": {"auth": "proxy_header", "trusted_proxies": ["10.0.0.5", "fd00::/8"]}}, {})
    assert cfg.webui.trusted_proxies == ("10.0.0.5/32", "fd00::/8")


@pytest.mark.parametrize("auth", ["none", "proxy_header"])
def test_auth_without_password_beyond_loopback_needs_allow_insecure_auth(auth):
    web = {"auth": auth, "listen": "0.0.0.0:8080", "trusted_proxies": ["10.0.0.5"]}
    problems = problems_of({**GOOD, "webui": web})
    assert len(problems) == 1 and problems[0].startswith("webui.allow_insecure_auth: auth is")
    assert parse_config({**GOOD, "webui": {**web, "allow_insecure_auth": True}}, {}).webui.allow_insecure_auth
    assert parse_config({**GOOD, "webui": {**web, "listen": "[::1]:8080"}}, {}).webui.auth == auth


def test_session_cookie_is_secure_unless_turned_off():
    assert parse_config(GOOD, {}).webui.cookie_secure is True
    assert parse_config({**GOOD, "webui": {"cookie_secure": False, "auth": "none"}}, {}).webui.cookie_secure is False


def test_webui_query_timeout_is_a_duration_within_bounds():
    assert parse_config({**GOOD, "webui": {"auth": "none", "query_timeout": "30s"}}, {}).webui.query_timeout == 30.0
    assert parse_config(GOOD, {}).webui.query_timeout == 10.0
    for bad in ("0s", "10m", "soon"):
        problems = problems_of({**GOOD, "webui": {"auth": "none", "query_timeout": bad}})
        assert [p for p in problems if p.startswith("webui.query_timeout:")], (bad, problems)


def test_consumer_crash_limit_defaults_to_5_and_must_be_1_or_more():
    assert parse_config(GOOD, {}).consumer.crash_limit == 5
    problems = problems_of({**GOOD, "consumer": {"crash_limit": 0}})
    assert any(p.startswith("consumer.crash_limit:") for p in problems), problems


def test_consumer_arrival_lease_defaults_to_a_minute_0_turns_it_off_and_a_few_seconds_is_too_short():
    assert parse_config(GOOD, {}).consumer.arrival_lease == 60.0
    assert parse_config({**GOOD, "consumer": {"arrival_lease": 0}}, {}).consumer.arrival_lease == 0
    assert parse_config({**GOOD, "consumer": {"arrival_lease": "5m"}}, {}).consumer.arrival_lease == 300
    problems = problems_of({**GOOD, "consumer": {"arrival_lease": "1s"}})
    assert any(p.startswith("consumer.arrival_lease:") for p in problems), problems
