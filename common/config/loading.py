"""Loading: YAML file -> environment expanded -> every section read and checked -> `Config`."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml

from common.config.alerts import read_alerts
from common.config.journald import journald_input
from common.config.schema import (
    AUTH_MODES,
    CONTAINER_FORMATS,
    FORMATS,
    INPUT_TYPES,
    MIN_API_TOKEN_CHARS,
    MIN_SECRET_KEY_BYTES,
    AmqpConfig,
    Config,
    ConsumerConfig,
    InputConfig,
    MongoConfig,
    MultilineConfig,
    ShipperConfig,
    WebConfig,
)
from common.config.values import (
    _amqp_url,
    _api_token_entries,
    _bool,
    _check_url_password,
    _choice,
    _duration_between,
    _encoding,
    _expand_env,
    _int_between,
    _listen,
    _mongo_uri,
    _networks,
    _positive_int,
    _public_url,
    _roles,
    _secret,
    _Section,
    _string,
    _strings,
    _timezone,
    _users,
    _write_concern,
    is_loopback,
)
from common.durations import parse_duration, parse_size
from common.errors import ConfigError
from common.roles import ROLES

T = TypeVar("T")


def _input(data: Any, path: str, problems: list[str]) -> InputConfig | None:
    s = _Section(data, path, problems)
    if not isinstance(data, dict):
        return None
    if s.get("type", "file", _choice(*INPUT_TYPES)) == "journald":
        return journald_input(s)
    fmt = s.get("format", "plain", _choice(*FORMATS))
    pattern = s.get("pattern", None, _string, required=fmt == "regex")
    engine = s.get("regex_engine", "re2", _choice("re2", "backtracking"))
    ml = None
    if s.data.get("multiline") is not None:
        m = s.section("multiline")
        start = m.get("start_pattern", None, _string, required=True)
        ml = MultilineConfig(start_pattern=start or "^", flush_timeout=m.get("flush_timeout", 2.0, parse_duration),
                             max_lines=m.get("max_lines", 1000, _positive_int))
        m.finish()
        _check_pattern(start, engine, m.key("start_pattern"), problems, named_groups=False)
    else:
        s.seen.add("multiline")
    if pattern is not None and fmt == "regex":
        _check_pattern(pattern, engine, s.key("pattern"), problems, named_groups=True)
    container = fmt in CONTAINER_FORMATS
    exclude = s.get("exclude", (), _strings)
    if container and "*.gz" not in exclude:
        exclude = (*exclude, "*.gz")  # the kubelet gzips rotated logs: never read them as text
    cfg = InputConfig(
        paths=s.get("paths", (), _strings, required=True),
        app=s.get("app", "", _string, required=not container),  # a container log: its container's name
        format=fmt, pattern=pattern, regex_engine=engine,
        regex_timeout=s.get("regex_timeout", 0.1, parse_duration),
        timezone=s.get("timezone", "UTC", _timezone),
        exclude=exclude,
        multiline=ml,
        start_at=s.get("start_at", "beginning", _choice("beginning", "end")),
        encoding=s.get("encoding", "utf-8", _encoding),
        max_line_bytes=s.get("max_line_bytes", 1 << 20, parse_size),
        ignore_older=s.get("ignore_older", None, parse_duration),
        close_inactive=s.get("close_inactive", 300.0, parse_duration),
        follow_symlinks=s.get("follow_symlinks", False, _bool),
    )
    s.finish()
    return cfg


def _check_pattern(pattern: str | None, engine: str, key: str, problems: list[str], named_groups: bool) -> None:
    if pattern is None:
        return
    from common.patterns import PatternError, compile_pattern
    try:
        compiled = compile_pattern(pattern, engine)
    except PatternError as exc:
        problems.append(f"{key}: {exc}")
        return
    if named_groups and not compiled.groupindex:
        problems.append(f"{key}: has no named groups (?P<name>...), so it would extract no fields")


def _from_env(env: Mapping[str, str], name: str, convert: Callable[[str], T], fallback: T,
              problems: list[str]) -> T:
    """An environment variable that replaces a config key: a bad value is a problem naming the variable."""
    try:
        return convert(env[name])
    except ValueError as exc:
        problems.append(f"{name} (environment): {exc}")
        return fallback


_FIELD_NAME = re.compile(r"^[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*$")


def _field_names(value: Any) -> tuple[str, ...]:
    """`mongo.field_indexes`: parsed field names as the query language spells them (`status`, `req.method`)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of field names")
    bad = [v for v in value if not _FIELD_NAME.match(v) or v.split(".")[0] in ("host", "app", "source", "level",
                                                                               "message")]
    if bad:
        raise ValueError(f"not parsed field names (letters, digits, _ - @, dotted; not host, app, source, level, "
                         f"message, which are indexed already): {', '.join(map(repr, bad[:5]))}")
    return tuple(dict.fromkeys(value))


def parse_config(data: Any, env: Mapping[str, str] | None = None, path: str | None = None) -> Config:
    """A validated Config from already-parsed YAML data; ConfigError lists every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    data = _expand_env(data if data is not None else {}, env, "", problems)
    root = _Section(data, "", problems)

    a = root.section("amqp")
    urls = a.get("url", AmqpConfig.urls, _amqp_url)
    if env.get("OPSLOG_AMQP_URL"):
        urls = _from_env(env, "OPSLOG_AMQP_URL", lambda v: _amqp_url(v.split(",")), urls, problems)
    amqp = AmqpConfig(
        urls=urls, exchange=a.get("exchange", "opslog", _string), queue=a.get("queue", "opslog.records", _string),
        dead_letter_queue=a.get("dead_letter_queue", "opslog.dead", _string),
        heartbeat=a.get("heartbeat", 30, _positive_int),
        queue_type=a.get("queue_type", "auto", _choice("auto", "quorum", "classic")),
        delivery_limit=a.get("delivery_limit", 5, _positive_int))
    a.finish()

    m = root.section("mongo")
    uri = m.get("uri", MongoConfig.uri, _mongo_uri)
    if env.get("OPSLOG_MONGO_URI"):
        uri = _from_env(env, "OPSLOG_MONGO_URI", _mongo_uri, uri, problems)
    mongo = MongoConfig(uri=uri, write_concern=m.get("write_concern", 1, _write_concern),
                        journal=m.get("journal", True, _bool),
                        retention=m.get("retention", None, parse_duration),
                        field_indexes=m.get("field_indexes", (), _field_names),
                        wildcard_index=m.get("wildcard_index", False, _bool))
    m.finish()
    for url in amqp.urls:
        _check_url_password(url, "amqp.url", problems)
    _check_url_password(mongo.uri, "mongo.uri", problems)

    s = root.section("shipper")
    raw_inputs = s.get("inputs", [])
    if not isinstance(raw_inputs, list):
        s.problem("inputs", "must be a list of inputs")
        raw_inputs = []
    inputs = [_input(item, s.key(f"inputs[{i}]"), problems) for i, item in enumerate(raw_inputs)]
    shipper = ShipperConfig(
        host=s.get("host", socket.gethostname(), _string),
        state_dir=s.get("state_dir", ShipperConfig.state_dir, _string),
        inputs=tuple(i for i in inputs if i is not None),
        batch_max_records=s.get("batch_max_records", 2000, _positive_int),
        batch_max_bytes=s.get("batch_max_bytes", 1 << 20, parse_size),
        batch_max_wait=s.get("batch_max_wait", 0.5, parse_duration),
        max_buffer_bytes=s.get("max_buffer_bytes", 32 << 20, parse_size),
        scan_interval=s.get("scan_interval", 1.0, parse_duration),
        max_open_files=s.get("max_open_files", 512, _positive_int),
        shutdown_timeout=s.get("shutdown_timeout", 10.0, parse_duration),
        metrics_listen=s.get("metrics_listen", None, _listen),
        watch=s.get("watch", "auto", _choice("auto", "inotify", "poll")),
        rotate_wait=s.get("rotate_wait", 5.0, parse_duration),
        reconnect_max_wait=s.get("reconnect_max_wait", 30.0, parse_duration),
        heartbeat_interval=s.get("heartbeat_interval", 5.0, parse_duration))
    if shipper.max_buffer_bytes < shipper.batch_max_bytes:
        s.problem("max_buffer_bytes", f"must be at least batch_max_bytes ({shipper.batch_max_bytes}): "
                                      "a full batch has to fit in the buffer")
    s.finish()

    c = root.section("consumer")
    consumer = ConsumerConfig(
        prefetch=c.get("prefetch", 20, _positive_int),
        batch_max_records=c.get("batch_max_records", 5000, _positive_int),
        batch_max_bytes=c.get("batch_max_bytes", 8 << 20, parse_size),
        batch_max_wait=c.get("batch_max_wait", 0.5, parse_duration),
        retry_max_wait=c.get("retry_max_wait", 30.0, parse_duration),
        shutdown_timeout=c.get("shutdown_timeout", 30.0, parse_duration),
        metrics_listen=c.get("metrics_listen", None, _listen),
        crash_limit=c.get("crash_limit", 5, _positive_int),
        arrival_lease=c.get("arrival_lease", 60.0, parse_duration))
    if 0 < consumer.arrival_lease < 3:
        c.problem("arrival_lease", "must be 0 (no arrival order) or at least 3s: a batch's insert must fit in it")
    c.finish()

    w = root.section("webui")
    token_entries = w.get("api_tokens", [], _api_token_entries)
    tokens = tuple(token for token, _role in token_entries)
    for i, token in enumerate(tokens):
        try:
            _secret(token, MIN_API_TOKEN_CHARS, "characters")
        except ValueError as exc:
            w.problem(f"api_tokens[{i}]", str(exc))
    threads = w.get("threads", 8, _int_between(2, 256))
    webui = WebConfig(
        listen=w.get("listen", "127.0.0.1:8080", _listen),
        auth=w.get("auth", "password", _choice(*AUTH_MODES)),
        users=w.get("users", {}, _users),
        api_tokens=tuple(t for t in tokens if t),
        api_token_roles={token: role for token, role in token_entries if token and role},
        roles=w.get("roles", {}, _roles),
        proxy_default_role=w.get("proxy_default_role", "viewer", _choice(*ROLES)),
        secret_key=w.get("secret_key", None, lambda v: _secret(v, MIN_SECRET_KEY_BYTES, "bytes")),
        proxy_header=w.get("proxy_header", "X-Forwarded-User", _string),
        trusted_proxies=w.get("trusted_proxies", (), _networks),
        allow_insecure_auth=w.get("allow_insecure_auth", False, _bool),
        cookie_secure=w.get("cookie_secure", True, _bool),
        default_window=w.get("default_window", 3600.0, parse_duration),
        max_limit=w.get("max_limit", 1000, _positive_int),
        export_max_rows=w.get("export_max_rows", 100_000, _positive_int),
        query_timeout=w.get("query_timeout", 10.0, _duration_between(0.1, 300.0)),
        word_search=w.get("word_search", False, _bool),
        threads=threads,
        max_streams=w.get("max_streams", threads // 2, _int_between(1, 255)),
        connection_limit=w.get("connection_limit", 100, _int_between(1, 10_000)),
        request_timeout=w.get("request_timeout", 30.0, _duration_between(1.0, 3600.0)),
        public_url=w.get("public_url", None, _public_url),
        stale_after=w.get("stale_after", 900.0, _duration_between(1.0, 30 * 86400.0)))
    if webui.max_streams >= webui.threads:
        w.problem("max_streams", f"must be below webui.threads ({webui.threads}), so short requests always have a "
                                 "thread")
    if webui.connection_limit < webui.threads:
        w.problem("connection_limit", f"must be at least webui.threads ({webui.threads})")
    # auth: password with no users here is fine: they may be in MongoDB (`opslog user add`).
    if webui.auth == "proxy_header" and w.data.get("trusted_proxies") is None:
        w.problem("trusted_proxies", "is required with auth: proxy_header: the addresses (CIDRs) of the proxies "
                  "that set the user header; requests from anywhere else get no user from it")
    if webui.auth != "password" and not is_loopback(webui.listen) and not webui.allow_insecure_auth:
        w.problem("allow_insecure_auth", f"auth is {webui.auth!r} and listen {webui.listen!r} is not loopback: "
                  "opslog itself checks no password there; set allow_insecure_auth: true if only a trusted "
                  "proxy or network can reach it")
    w.finish()

    alerts = read_alerts(root.section("alerts"), problems)
    log_level = root.get("log_level", "info", _choice("debug", "info", "warning", "error"))
    root.finish()
    if problems:
        raise ConfigError(_first_per_key(problems))
    return Config(amqp=amqp, mongo=mongo, shipper=shipper, consumer=consumer, webui=webui,
                  alerts=alerts, log_level=log_level, path=path)


def _first_per_key(problems: list[str]) -> list[str]:
    """One problem per key path: an unset ${VAR} should not also read as an empty value."""
    seen: set[str] = set()
    first = []
    for problem in problems:
        key = problem.split(": ", 1)[0]
        if key not in seen:
            seen.add(key)
            first.append(problem)
    return first


def load_config(path: str, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the YAML file at `path`."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_config(data, env, path=os.path.abspath(path))
