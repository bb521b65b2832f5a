"""Reading values: one mapping at a time with every problem kept under its key path
(`_Section`), and the converters that turn a YAML value into a checked one (they raise
ValueError with the text the operator reads). Private to the config package."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from common.durations import parse_duration
from common.roles import check_role

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# What example files ship in place of a secret (deploy/systemd/opslog.env.example says `change-me`):
# a config still holding one would let anyone who read the example sign in.
_PLACEHOLDER = re.compile(r"change-?me|replace-?me|placeholder|example", re.IGNORECASE)


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


def _public_url(value: Any) -> str:
    if urlsplit(_string(value)).scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


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


def _roles(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError("must map user names to roles (viewer, editor, admin)")
    for name, role in value.items():
        try:
            check_role(role)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return dict(value)


def _api_token_entries(value: Any) -> list[tuple[str, str | None]]:
    """`webui.api_tokens`: a string or a list of strings (role: common.roles.PLAIN_TOKEN_ROLE) and
    `{token, role}` mappings, as (token, role or None)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError("must be a token, or a list of tokens and {token, role} mappings")
    entries: list[tuple[str, str | None]] = []
    for item in value:
        if isinstance(item, dict):
            if set(item) - {"token", "role"} or not isinstance(item.get("token"), str):
                raise ValueError("an entry that is a mapping must be {token: ..., role: viewer|editor|admin}")
            entries.append((item["token"], check_role(item.get("role"))))
        elif isinstance(item, str):
            entries.append((item, None))
        else:
            raise ValueError("must be a token, or a list of tokens and {token, role} mappings")
    return entries


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
