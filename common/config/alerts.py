"""The `alerts:` section: notifiers and rules, and one rule read from the API's JSON the same way.

A rule is checked alike wherever it comes from (the config file, `POST /api/alerts`):
`read_rule` records every problem under its key path, and `rule_problems` gives them
for one JSON body. Queries are checked with the query language's own parser
(`common.query.parse`), so `opslog check-config` rejects a rule whose query the
evaluator could not run.

    alerts:
      notifiers:
        ops-hook: {type: webhook, url: "https://hooks.example/opslog", format: json}   # or slack
        ops-mail: {type: email, to: [oncall@example.com], from: opslog@example.com,
                   smtp: {host: smtp.example.com, port: 587, starttls: true, user: opslog,
                          password: "${SMTP_PASSWORD}"}}
      rules:
        - {name: payment-errors, kind: count, query: 'level:error app:payments', window: 5m, above: 20,
           for: 1m, every: 30s, notify: [ops-hook, ops-mail]}
        - {name: web-01-silent, kind: silence, query: 'host:web-01', for: 5m, notify: [ops-hook]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from common.config.values import _bool, _choice, _duration_between, _listen, _positive_int, _Section, _string, _strings
from common.query import QueryError, parse

RULE_KINDS = ("count", "silence", "ratio")
NOTIFIER_TYPES = ("webhook", "email")
DEFAULT_EVERY = 30.0
DEFAULT_REPEAT = 4 * 3600.0
DEFAULT_WINDOW = 300.0
MAX_WINDOW = 7 * 86400.0


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    starttls: bool = True
    ssl: bool = False          # SMTPS (port 465) instead of STARTTLS
    user: str | None = None
    password: str | None = None
    timeout: float = 10.0
    ca_file: str | None = None  # trust this CA (PEM) instead of the system's, e.g. an internal relay


@dataclass(frozen=True)
class NotifierConfig:
    name: str
    type: str                              # webhook | email
    url: str | None = None                 # webhook
    format: str = "json"                   # webhook: json | slack
    headers: Mapping[str, str] = field(default_factory=dict)
    to: tuple[str, ...] = ()               # email
    sender: str | None = None              # email `from`
    smtp: SmtpConfig | None = None
    timeout: float = 10.0                  # one attempt
    attempts: int = 5                      # tries per delivery (tenacity, backoff between them)


@dataclass(frozen=True)
class AlertRule:
    """One rule, from the config (`source` "config", read-only) or the API ("api")."""

    name: str
    kind: str
    query: str | None = None
    of: str | None = None                  # ratio: the denominator's query
    window: float = DEFAULT_WINDOW         # count, ratio
    above: float | None = None
    below: float | None = None
    for_: float = 0.0                      # count/ratio: pending this long; silence: silent this long
    every: float = DEFAULT_EVERY
    repeat: float = DEFAULT_REPEAT
    notify: tuple[str, ...] = ()
    host: str | None = None                # silence: globs
    app: str | None = None
    file: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = "config"
    id: str = ""

    @property
    def threshold(self) -> float:
        if self.kind == "silence":
            return 0.0
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """The API's (and the config's) spelling: `for`, only the keys that are set."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        for key in ("query", "of", "above", "below", "host", "app", "file"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.kind != "silence":
            out["window"] = self.window
        out.update({"for": self.for_, "every": self.every, "repeat": self.repeat, "notify": list(self.notify),
                    "labels": dict(self.labels)})
        return out


@dataclass(frozen=True)
class AlertsConfig:
    notifiers: Mapping[str, NotifierConfig] = field(default_factory=dict)
    rules: tuple[AlertRule, ...] = ()
    metrics_listen: str | None = None
    timeout: float = 10.0                  # one rule's evaluation (maxTimeMS and a deadline)
    count_cap: int = 100_000               # a count from `logs` stops here (reported as capped)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"must be a number 0 or more, got {value!r}")
    return float(value)


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and k
                                              for k, v in value.items()):
        raise ValueError("must map label names to string values")
    return dict(value)


def _notify(value: Any) -> tuple[str, ...]:
    """Notifier names; none is allowed (a rule only shown in the UI and its metrics)."""
    return () if value == [] else _strings(value)


def check_query(text: str | None, key: str, problems: list[str]) -> None:
    """`text` parsed by the query language; a problem names the key and the position."""
    if text is None:
        return
    try:
        parse(text)
    except QueryError as exc:
        problems.append(f"{key}: {exc}")  # the message names the position


def read_rule(data: Any, path: str, problems: list[str], notifiers: set[str] | None,
              source: str = "config") -> AlertRule | None:
    """One rule from YAML/JSON data; None (with problems recorded) when it cannot be built."""
    s = _Section(data, path, problems)
    if not isinstance(data, dict):
        return None
    before = len(problems)
    name = s.get("name", "", _string, required=True)
    kind = s.get("kind", "count", _choice(*RULE_KINDS))
    query = s.get("query", None, _string, required=kind in ("count", "ratio"))
    of = s.get("of", None, _string, required=kind == "ratio")
    window = s.get("window", DEFAULT_WINDOW, _duration_between(1, MAX_WINDOW))
    above, below = s.get("above", None, _number), s.get("below", None, _number)
    for_ = s.get("for", 0.0, _duration_between(0, MAX_WINDOW), required=kind == "silence")
    every = s.get("every", DEFAULT_EVERY, _duration_between(1, 86400))
    repeat = s.get("repeat", DEFAULT_REPEAT, _duration_between(1, 30 * 86400))
    notify = s.get("notify", (), _notify)
    host, app, file = (s.get(k, None, _string) for k in ("host", "app", "file"))
    labels = s.get("labels", {}, _labels)
    s.get("id", None)       # what the API sends back (GET then PUT) is not a problem
    s.get("source", None)
    if kind in ("count", "ratio"):
        if (above is None) == (below is None):
            s.problem("above", "give exactly one of above or below (the threshold)")
        for key in ("host", "app", "file"):
            if s.data.get(key) is not None:
                s.problem(key, f"belongs to silence rules; a {kind} rule filters with its query")
    if kind == "silence":
        if query is None and host is None and app is None and file is None:
            s.problem("query", "a silence rule needs a query or host, app or file globs")
        if for_ is not None and for_ < 1:
            s.problem("for", "must be at least 1s for a silence rule (how long without records)")
        for key in ("above", "below", "window", "of"):
            if s.data.get(key) is not None:
                s.problem(key, "does not apply to a silence rule (it fires after `for` without records)")
    if kind == "count" and s.data.get("of") is not None:
        s.problem("of", "only ratio rules divide by a second query")
    check_query(query, s.key("query"), problems)
    check_query(of, s.key("of"), problems)
    if notifiers is not None:
        for i, target in enumerate(notify):
            if target not in notifiers:
                s.problem(f"notify[{i}]", f"no notifier named {target!r} under alerts.notifiers")
    s.finish()
    if len(problems) > before:
        return None
    return AlertRule(name=name, kind=kind, query=query, of=of, window=window, above=above, below=below,
                     for_=for_, every=every, repeat=repeat, notify=tuple(notify), host=host, app=app, file=file,
                     labels=labels, source=source)


def rule_problems(data: Any, notifiers: set[str]) -> tuple[AlertRule | None, list[str]]:
    """A rule from an API body, or the problems (`key: text`) that keep it from being one."""
    problems: list[str] = []
    rule = read_rule(data, "", problems, notifiers, source="api")
    return rule, problems


def _webhook_url(value: Any) -> str:
    if urlsplit(_string(value)).scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


def _read_notifier(name: str, data: Any, path: str, problems: list[str]) -> NotifierConfig | None:
    s = _Section(data, path, problems)
    if not isinstance(data, dict):
        return None
    kind = s.get("type", None, _choice(*NOTIFIER_TYPES), required=True)
    timeout = s.get("timeout", 10.0, _duration_between(0.1, 300))
    attempts = s.get("attempts", 5, _positive_int)
    if kind == "webhook":
        headers = s.get("headers", {}, _labels)
        cfg = NotifierConfig(name=name, type=kind, url=s.get("url", None, _webhook_url, required=True),
                             format=s.get("format", "json", _choice("json", "slack")), headers=headers,
                             timeout=timeout, attempts=attempts)
    elif kind == "email":
        m = s.section("smtp")
        smtp = SmtpConfig(host=m.get("host", "", _string, required=True), port=m.get("port", 587, _positive_int),
                          starttls=m.get("starttls", True, _bool), ssl=m.get("ssl", False, _bool),
                          user=m.get("user", None, _string), password=m.get("password", None, _string),
                          timeout=m.get("timeout", 10.0, _duration_between(0.1, 300)),
                          ca_file=m.get("ca_file", None, _string))
        if smtp.ssl and smtp.starttls and m.data.get("starttls") is not None:
            m.problem("starttls", "ssl (SMTPS) and starttls exclude each other")
        if smtp.ssl:
            smtp = SmtpConfig(**{**smtp.__dict__, "starttls": False})
        if (smtp.user is None) != (smtp.password is None):
            m.problem("password" if smtp.user else "user", "user and password go together")
        m.finish()
        cfg = NotifierConfig(name=name, type=kind, to=s.get("to", (), _strings, required=True),
                             sender=s.get("from", None, _string, required=True), smtp=smtp,
                             timeout=timeout, attempts=attempts)
    else:
        cfg = None
    s.finish()
    return cfg


def read_alerts(section: _Section, problems: list[str]) -> AlertsConfig:
    """The whole `alerts:` section; its problems join the config's."""
    raw_notifiers = section.get("notifiers", {})
    notifiers: dict[str, NotifierConfig] = {}
    if not isinstance(raw_notifiers, dict):
        section.problem("notifiers", "must map notifier names to their settings")
        raw_notifiers = {}
    for name, data in raw_notifiers.items():
        made = _read_notifier(str(name), data, section.key(f"notifiers.{name}"), problems)
        if made is not None:
            notifiers[str(name)] = made
    raw_rules = section.get("rules", [])
    if not isinstance(raw_rules, list):
        section.problem("rules", "must be a list of rules")
        raw_rules = []
    rules, names = [], set()
    for i, data in enumerate(raw_rules):
        rule = read_rule(data, section.key(f"rules[{i}]"), problems, set(raw_notifiers))
        if rule is None:
            continue
        if rule.name in names:
            problems.append(f"{section.key(f'rules[{i}]')}.name: {rule.name!r} is declared twice")
            continue
        names.add(rule.name)
        rules.append(rule)
    cfg = AlertsConfig(notifiers=notifiers, rules=tuple(rules),
                       metrics_listen=section.get("metrics_listen", None, _listen),
                       timeout=section.get("timeout", 10.0, _duration_between(0.1, 300)),
                       count_cap=section.get("count_cap", 100_000, _positive_int))
    section.finish()
    return cfg


__all__ = ["DEFAULT_EVERY", "DEFAULT_REPEAT", "NOTIFIER_TYPES", "RULE_KINDS", "AlertRule", "AlertsConfig",
           "NotifierConfig", "SmtpConfig", "check_query", "read_alerts", "read_rule",
           "rule_problems"]
