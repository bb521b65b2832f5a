"""The config's typed shape: frozen dataclasses, one per section, with their defaults."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from common.config.alerts import AlertsConfig

FORMATS = ("plain", "json", "syslog", "nginx_combined", "apache_common", "regex", "logfmt", "cri", "docker")
CONTAINER_FORMATS = ("cri", "docker")  # container runtimes' log files (shipper.container)
INPUT_TYPES = ("file", "journald")  # what an input reads: files (the default) or the systemd journal
AUTH_MODES = ("password", "proxy_header", "none")
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
    field_indexes: tuple[str, ...] = ()  # parsed fields to index with ts (query-language names: status, req.method)
    wildcard_index: bool = False         # also index every parsed field (fields.$**) where the server can

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
class JournaldConfig:
    """What a `type: journald` input reads (shipper.journal); parsed by common.config.journald."""

    units: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    priority: int | None = None   # at most this level: 0 emerg .. 7 debug
    matches: tuple[str, ...] = ()  # FIELD=value, as journalctl takes them
    directory: str | None = None  # journal files of this directory; None: the system journal


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
    type: str = "file"  # one of INPUT_TYPES
    journald: JournaldConfig | None = None  # with type: journald


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
    heartbeat_interval: float = 5.0   # per-file heartbeats (size, confirmed offset) this often; 0: none


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
    arrival_lease: float = 60.0  # s a batch's arrival block may stay open (the live tail); 0: no arrival order


@dataclass(frozen=True)
class WebConfig:
    listen: str = "127.0.0.1:8080"
    auth: str = "password"
    users: Mapping[str, str] = field(default_factory=dict)
    api_tokens: tuple[str, ...] = ()
    # Roles (common.roles): of config and proxy_header users by name (config users default to admin,
    # proxy users to proxy_default_role); of api tokens given as {token, role} (plain ones: viewer).
    roles: Mapping[str, str] = field(default_factory=dict)
    api_token_roles: Mapping[str, str] = field(default_factory=dict)
    proxy_default_role: str = "viewer"
    secret_key: str | None = None
    proxy_header: str = "X-Forwarded-User"
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose requests may carry proxy_header
    allow_insecure_auth: bool = False      # auth none/proxy_header on a non-loopback listen
    cookie_secure: bool = True             # false only for plain-HTTP trials off loopback
    default_window: float = 3600.0
    max_limit: int = 1000
    export_max_rows: int = 100_000
    query_timeout: float = 10.0  # seconds: maxTimeMS for every database read of one request
    word_search: bool = False    # on a server with a $text index, bare words match whole words through it
    threads: int = 8                # waitress worker threads (requests running at once)
    max_streams: int = 4            # of those, at most this many held by streamed responses (exports, tail)
    connection_limit: int = 100     # open connections; more wait in the listen backlog
    request_timeout: float = 30.0   # a connection silent this long is closed (slow or idle client)
    public_url: str | None = None   # how operators reach the UI (alert permalinks); default http://<listen>
    stale_after: float = 900.0      # a host or file with no heartbeat (or record) for this long is silent


@dataclass(frozen=True)
class Config:
    amqp: AmqpConfig = AmqpConfig()
    mongo: MongoConfig = MongoConfig()
    shipper: ShipperConfig = field(default_factory=ShipperConfig)
    consumer: ConsumerConfig = ConsumerConfig()
    webui: WebConfig = field(default_factory=WebConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)  # issue 16: common.config.alerts
    log_level: str = "info"
    path: str | None = None
