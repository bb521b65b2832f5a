"""Config loading: one YAML file -> typed, validated, frozen dataclasses.

Validation is offline and exhaustive: every problem is collected with its key
path (`shipper.inputs[1].format: ...`) and raised at once as ConfigError.
Environment: `${VAR}` / `${VAR:-default}` inside string values, and
OPSLOG_AMQP_URL / OPSLOG_MONGO_URI replace amqp.url / mongo.uri.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from common.durations import parse_duration, parse_size
from common.errors import ConfigError

T = TypeVar("T")

FORMATS = ("plain", "json", "syslog", "nginx_combined", "apache_common", "regex", "logfmt", "cri", "docker")
CONTAINER_FORMATS = ("cri", "docker")  # container runtimes' log files (shipper.container)
AUTH_MODES = ("password", "proxy_header", "none")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# What example files ship in place of a secret (deploy/systemd/opslog.env.example says `change-me`):
# a config still holding one would let anyone who read the example sign in.
_PLACEHOLDER = re.compile(r"change-?me|replace-?me|placeholder|example", re.IGNORECASE)
MIN_SECRET_KEY_BYTES = 32
MIN_API_TOKEN_CHARS = 20


@dataclass(frozen=True)
class AmqpConfig:
    urls: tuple[str, ...] = ("amqp://guest:guest@127.0.0.1:5672/%2F",)
    exchange: str = "opslog"
    queue: str = "opslog.records"
    dead_letter_queue: str = "opslog.dead"
    heartbeat: int = 30
    queue_type: str = "auto"  # auto | quorum | classic
    delivery_limit: int = 5

    @property
    def url(self) -> str:
        return self.urls[0]


@dataclass(frozen=True)
class MongoConfig:
    uri: str = "mongodb://127.0.0.1:27017/opslog"
    write_concern: str | int = 1
    journal: bool = True  # acknowledged = on disk: a database crash cannot lose an acked batch
    retention: float | None = None

    @property
    def database(self) -> str:
        path = urlsplit(self.uri).path.lstrip("/")
        return path or "opslog"


@dataclass(frozen=True)
class MultilineConfig:
    start_pattern: str
    flush_timeout: float = 2.0
    max_lines: int = 1000


@dataclass(frozen=True)
class InputConfig:
    paths: tuple[str, ...]
    app: str
    format: str = "plain"
    pattern: str | None = None
    regex_engine: str = "re2"  # re2 | backtracking (with regex_timeout per line)
    regex_timeout: float = 0.1
    timezone: str = "UTC"
    exclude: tuple[str, ...] = ()
    multiline: MultilineConfig | None = None
    start_at: str = "beginning"
    encoding: str = "utf-8"
    max_line_bytes: int = 1 << 20
    ignore_older: float | None = None
    close_inactive: float = 300.0
    follow_symlinks: bool = False  # symlinks to files the paths match anyway; see README


@dataclass(frozen=True)
class ShipperConfig:
    host: str = field(default_factory=socket.gethostname)
    state_dir: str = "/var/lib/opslog/shipper"
    inputs: tuple[InputConfig, ...] = ()
    batch_max_records: int = 2000
    batch_max_bytes: int = 1 << 20
    batch_max_wait: float = 0.5
    max_buffer_bytes: int = 32 << 20
    scan_interval: float = 1.0
    max_open_files: int = 512
    shutdown_timeout: float = 10.0
    metrics_listen: str | None = None
    watch: str = "auto"        # auto | inotify | poll: how new and rotated files are noticed between scans
    rotate_wait: float = 5.0   # a rotated-away or deleted file is closed once idle at its end this long
    reconnect_max_wait: float = 30.0  # cap of the exponential backoff between broker connection attempts


@dataclass(frozen=True)
class ConsumerConfig:
    prefetch: int = 20
    batch_max_records: int = 5000
    batch_max_bytes: int = 8 << 20
    batch_max_wait: float = 0.5
    retry_max_wait: float = 30.0
    shutdown_timeout: float = 30.0
    metrics_listen: str | None = None
    crash_limit: int = 5  # a suspect message is parked after killing the consumer this often while alone


@dataclass(frozen=True)
class WebConfig:
    listen: str = "127.0.0.1:8080"
    auth: str = "password"
    users: Mapping[str, str] = field(default_factory=dict)
    api_tokens: tuple[str, ...] = ()
    secret_key: str | None = None
    proxy_header: str = "X-Forwarded-User"
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose requests may carry proxy_header
    allow_insecure_auth: bool = False      # auth none/proxy_header on a non-loopback listen
    cookie_secure: bool = True             # false only for plain-HTTP trials off loopback
    default_window: float = 3600.0
    max_limit: int = 1000
    export_max_rows: int = 100_000
    query_timeout: float = 10.0  # seconds: maxTimeMS for every database read of one request
    threads: int = 8                # waitress worker threads (requests running at once)
    max_streams: int = 4            # of those, at most this many held by streamed responses (exports, tail)
    connection_limit: int = 100     # open connections; more wait in the listen backlog
    request_timeout: float = 30.0   # a connection silent this long is closed (slow or idle client)


@dataclass(frozen=True)
class Config:
    amqp: AmqpConfig = AmqpConfig()
    mongo: MongoConfig = MongoConfig()
    shipper: ShipperConfig = field(default_factory=ShipperConfig)
    consumer: ConsumerConfig = ConsumerConfig()
    webui: WebConfig = field(default_factory=WebConfig)
    log_level: str = "info"
    path: str | None = None


class _Section:
    """Reads one mapping, recording every problem under its key path."""

    def __init__(self, data: Any, path: str, problems: list[str]):
        self.path, self.problems = path, problems
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem("", "must be a mapping")
            data = {}
        self.data, self.seen = data, set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, text: str) -> None:
        where = self.key(name) if name else (self.path or "config")
        self.problems.append(f"{where}: {text}")

    def get(self, name: str, default: Any, convert: Callable[[Any], Any] | None = None,
            required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                self.problem(name, "is required")
            return default
        value = self.data[name]
        if convert is None:
            return value
        try:
            return convert(value)
        except (ValueError, TypeError) as exc:
            self.problem(name, str(exc))
            return default

    def section(self, name: str) -> _Section:
        self.seen.add(name)
        return _Section(self.data.get(name), self.key(name), self.problems)

    def finish(self) -> None:
        for extra in sorted(set(map(str, self.data)) - self.seen):
            self.problem(extra, "unknown key")


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a string or a non-empty list of strings")
    return tuple(value)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high}, got {value!r}")
        return value
    return check


def _duration_between(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(f"must be from {low:g}s to {high:g}s, got {value!r}")
        return seconds
    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value
    return check


def _listen(value: Any) -> str:
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, got {value!r}")
    return str(value)


def _amqp_url(value: Any) -> tuple[str, ...]:
    urls = _strings(value)
    for url in urls:
        if urlsplit(url).scheme not in ("amqp", "amqps"):
            raise ValueError(f"must be amqp:// or amqps:// URLs, got {url!r}")
    return urls


def _mongo_uri(value: Any) -> str:
    if urlsplit(_string(value)).scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"must be a mongodb:// URI, got {value!r}")
    return value


def _write_concern(value: Any) -> str | int:
    if value == "majority" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"must be 'majority' or a number of nodes, got {value!r}")


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(_string(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _encoding(value: Any) -> str:
    import codecs
    try:
        codecs.lookup(_string(value))
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}") from None
    if "\n".encode(value) != b"\n":
        # Files are split into lines on the byte 0x0A before decoding.
        raise ValueError(f"encoding {value!r} does not write a newline as the single byte 0x0A "
                         "(UTF-16/32 logs are not supported)")
    return value


def is_loopback(listen: str) -> bool:
    """Whether `listen` (HOST:PORT) binds to this machine only."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(value: Any, minimum: int, unit: str) -> str:
    text = _string(value)
    size = len(text.encode()) if unit == "bytes" else len(text)
    if _PLACEHOLDER.search(text):
        raise ValueError("is a placeholder from the examples: set a random value "
                         "(python3 -c 'import secrets; print(secrets.token_hex(32))')")
    if size < minimum:
        raise ValueError(f"is {size} {unit} long, at least {minimum} are needed "
                         "(python3 -c 'import secrets; print(secrets.token_hex(32))')")
    return text


def _check_url_password(url: str, key: str, problems: list[str]) -> None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password and _PLACEHOLDER.search(password):
        problems.append(f"{key}: the password is a placeholder from the examples: set the real one")


def _networks(value: Any) -> tuple[str, ...]:
    networks = []
    for item in _strings(value):
        try:
            networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"must be IP addresses or CIDRs like 10.0.0.0/8, got {item!r}") from None
    return tuple(networks)


def _users(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError("must map user names to password hashes (opslog hash-password)")
    return dict(value)


def _expand_env(value: Any, env: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, env, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""
    return _ENV_REF.sub(substitute, value)


def _input(data: Any, path: str, problems: list[str]) -> InputConfig | None:
    s = _Section(data, path, problems)
    if not isinstance(data, dict):
        return None
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
                        retention=m.get("retention", None, parse_duration))
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
        reconnect_max_wait=s.get("reconnect_max_wait", 30.0, parse_duration))
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
        crash_limit=c.get("crash_limit", 5, _positive_int))
    c.finish()

    w = root.section("webui")
    tokens = w.get("api_tokens", (), _strings)
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
        secret_key=w.get("secret_key", None, lambda v: _secret(v, MIN_SECRET_KEY_BYTES, "bytes")),
        proxy_header=w.get("proxy_header", "X-Forwarded-User", _string),
        trusted_proxies=w.get("trusted_proxies", (), _networks),
        allow_insecure_auth=w.get("allow_insecure_auth", False, _bool),
        cookie_secure=w.get("cookie_secure", True, _bool),
        default_window=w.get("default_window", 3600.0, parse_duration),
        max_limit=w.get("max_limit", 1000, _positive_int),
        export_max_rows=w.get("export_max_rows", 100_000, _positive_int),
        query_timeout=w.get("query_timeout", 10.0, _duration_between(0.1, 300.0)),
        threads=threads,
        max_streams=w.get("max_streams", threads // 2, _int_between(1, 255)),
        connection_limit=w.get("connection_limit", 100, _int_between(1, 10_000)),
        request_timeout=w.get("request_timeout", 30.0, _duration_between(1.0, 3600.0)))
    if webui.max_streams >= webui.threads:
        w.problem("max_streams", f"must be below webui.threads ({webui.threads}), so short requests always have a "
                                 "thread")
    if webui.connection_limit < webui.threads:
        w.problem("connection_limit", f"must be at least webui.threads ({webui.threads})")
    if webui.auth == "password" and not webui.users and not webui.api_tokens and "webui" in data:
        w.problem("users", "auth is 'password' but no users or api_tokens are configured")
    if webui.auth == "proxy_header" and w.data.get("trusted_proxies") is None:
        w.problem("trusted_proxies", "is required with auth: proxy_header: the addresses (CIDRs) of the proxies "
                  "that set the user header; requests from anywhere else get no user from it")
    if webui.auth != "password" and not is_loopback(webui.listen) and not webui.allow_insecure_auth:
        w.problem("allow_insecure_auth", f"auth is {webui.auth!r} and listen {webui.listen!r} is not loopback: "
                  "opslog itself checks no password there; set allow_insecure_auth: true if only a trusted "
                  "proxy or network can reach it")
    w.finish()

    log_level = root.get("log_level", "info", _choice("debug", "info", "warning", "error"))
    root.finish()
    if problems:
        raise ConfigError(_first_per_key(problems))
    return Config(amqp=amqp, mongo=mongo, shipper=shipper, consumer=consumer, webui=webui,
                  log_level=log_level, path=path)


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
