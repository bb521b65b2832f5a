"""Rules as stored documents and back; a rule's labels, fingerprint, and which silences mute it."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from common.config import AlertRule
from webui.alerts.plan import host_and_app

CONFIG_PREFIX = "config:"  # ids of rules declared in the config file (read-only)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
RULE_FIELDS = ("name", "kind", "query", "of", "window", "above", "below", "for_", "every", "repeat", "notify",
               "host", "app", "file", "labels")


def config_rules(rules: Iterable[AlertRule]) -> list[AlertRule]:
    return [replace(r, id=CONFIG_PREFIX + r.name, source="config") for r in rules]


def to_document(rule: AlertRule) -> dict[str, Any]:
    doc = {key: getattr(rule, key) for key in RULE_FIELDS}
    doc["notify"], doc["labels"] = list(rule.notify), dict(rule.labels)
    doc["for"] = doc.pop("for_")
    return doc


def from_document(doc: Mapping[str, Any]) -> AlertRule:
    values = {key: doc.get(key) for key in RULE_FIELDS if key != "for_" and doc.get(key) is not None}
    values["notify"] = tuple(doc.get("notify") or ())
    values["labels"] = dict(doc.get("labels") or {})
    return AlertRule(**values, for_=float(doc.get("for") or 0.0), source="api", id=str(doc["_id"]))


def labels(rule: AlertRule) -> dict[str, str]:
    """What silences match on: the rule's name and kind, the host and app it watches, its own labels."""
    out = {"alertname": rule.name, "kind": rule.kind}
    if rule.kind == "silence":
        out.update({k: v for k, v in (("host", rule.host), ("app", rule.app), ("file", rule.file)) if v})
    host, app = host_and_app(rule.query)
    out.update({k: v for k, v in (("host", host), ("app", app)) if v and k not in out})
    out.update(rule.labels)
    return out


def fingerprint(rule: AlertRule) -> str:
    """Stable across restarts and evaluators: the rule's name and labels, hashed."""
    body = orjson.dumps(sorted(labels(rule).items()))
    return hashlib.sha256(body).hexdigest()[:16]


def is_muted(rule: AlertRule, silences: Iterable[Mapping[str, Any]], now: datetime) -> bool:
    """A silence in force names the rule, or every one of its matchers (globs) matches the rule's labels."""
    mine = labels(rule)
    for silence in silences:
        until = silence.get("until")
        if until is None or _aware(until) <= now:
            continue
        if silence.get("rule") in (rule.id, rule.name):
            return True
        matchers = silence.get("matchers") or {}
        if matchers and all(key in mine and fnmatch.fnmatchcase(mine[key], str(glob))
                            for key, glob in matchers.items()):
            return True
    return False


def _aware(dt: datetime) -> datetime:
    from datetime import UTC
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
