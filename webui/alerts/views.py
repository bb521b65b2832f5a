"""`/api/alerts`, `/api/silences` and the `/alerts` page.

Rules from the config file are listed with `source: config` and ids `config:<name>`; they are
read-only here (409: change them in the file). Writes need the editor role (`require_role`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, g, render_template, request

from common.config import AlertRule, rule_problems
from common.durations import parse_duration
from webui.alerts.evaluator import human
from webui.alerts.rules import CONFIG_PREFIX, NAME, config_rules, fingerprint, labels
from webui.alerts.store import AlertStore, NameTaken
from webui.auth import current_role, require_role
from webui.formats import json_ready, json_response
from webui.params import iso

bp = Blueprint("alerts", __name__)
STATE_FIELDS = ("state", "value", "capped", "since", "started_at", "ended_at", "notified_at", "last_eval", "error",
                "slow", "muted", "from")
MAX_SILENCE = timedelta(days=365)


def install(app: Flask, db: Any) -> None:
    """`db`: the app's pymongo Database (typed loosely: only webui.alerts.store names pymongo)."""
    app.extensions["opslog.alerts"] = AlertStore(db, timeout=app.config["OPSLOG"].webui.query_timeout)
    app.register_blueprint(bp)


def store() -> AlertStore:
    return current_app.extensions["opslog.alerts"]


def _config_rules() -> list[AlertRule]:
    return config_rules(current_app.config["OPSLOG"].alerts.rules)


def _find(rule_id: str) -> AlertRule | None:
    if rule_id.startswith(CONFIG_PREFIX):
        return next((r for r in _config_rules() if r.id == rule_id), None)
    return store().rule(rule_id)


def _error(message: str, status: int, param: str | None = None, **extra: Any):
    return json_response({"error": message, "param": param, **extra}, status)


def _rule_json(rule: AlertRule, state: dict[str, Any] | None) -> dict[str, Any]:
    body = {"id": rule.id, "source": rule.source, **rule.to_dict(), "fingerprint": fingerprint(rule),
            "label_set": labels(rule), "threshold": rule.threshold}
    state = state or {}
    body["status"] = {key: state.get(key) for key in STATE_FIELDS}
    body["status"]["state"] = state.get("state", "ok")
    body["values"] = [{"t": p.get("t"), "v": p.get("v")} for p in state.get("values", [])]
    return body


def _all_rules() -> list[AlertRule]:
    return _config_rules() + store().rules()


@bp.get("/api/alerts")
def list_rules():
    states = store().states()
    return json_response(json_ready({"rules": [_rule_json(r, states.get(r.id)) for r in _all_rules()]}))


def _body_rule() -> AlertRule | tuple:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("the body must be a JSON object (a rule)", 400)
    rule, problems = rule_problems(body, set(current_app.config["OPSLOG"].alerts.notifiers))
    if problems:
        key, _, text = problems[0].partition(": ")
        return _error(text, 400, key.split("[")[0].split(".")[0] or None, problems=problems)
    assert rule is not None
    if not NAME.match(rule.name):
        return _error("must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit", 400,
                      "name")
    if any(r.name == rule.name for r in _config_rules()):
        return _error(f"a rule named {rule.name!r} is declared in the config file", 409, "name")
    return rule


@bp.post("/api/alerts")
@require_role("editor")
def create_rule():
    rule = _body_rule()
    if not isinstance(rule, AlertRule):
        return rule
    store().init()
    try:
        rule_id = store().create_rule(rule, g.user)
    except NameTaken:
        return _error(f"a rule named {rule.name!r} exists", 409, "name")
    created = store().rule(rule_id)
    return json_response(json_ready(_rule_json(created, None)), 201)


@bp.get("/api/alerts/<rule_id>")
def get_rule(rule_id: str):
    rule = _find(rule_id)
    if rule is None:
        return _error("no alert rule with this id", 404, "id")
    return json_response(json_ready(_rule_json(rule, store().state(rule.id))))


def _read_only(rule_id: str):
    return _error("this rule is declared in the config file (read-only here): change it there", 409, "id")


@bp.put("/api/alerts/<rule_id>")
@require_role("editor")
def replace_rule(rule_id: str):
    if rule_id.startswith(CONFIG_PREFIX):
        return _read_only(rule_id) if _find(rule_id) else _error("no alert rule with this id", 404, "id")
    if store().rule(rule_id) is None:
        return _error("no alert rule with this id", 404, "id")
    rule = _body_rule()
    if not isinstance(rule, AlertRule):
        return rule
    try:
        store().replace_rule(rule_id, rule, g.user)
    except NameTaken:
        return _error(f"a rule named {rule.name!r} exists", 409, "name")
    return json_response(json_ready(_rule_json(store().rule(rule_id), store().state(rule_id))))


@bp.delete("/api/alerts/<rule_id>")
@require_role("editor")
def delete_rule(rule_id: str):
    if rule_id.startswith(CONFIG_PREFIX):
        return _read_only(rule_id) if _find(rule_id) else _error("no alert rule with this id", 404, "id")
    if not store().delete_rule(rule_id):
        return _error("no alert rule with this id", 404, "id")
    return "", 204


@bp.get("/api/alerts/<rule_id>/history")
def history(rule_id: str):
    rule = _find(rule_id)
    if rule is None:
        return _error("no alert rule with this id", 404, "id")
    state = store().state(rule.id) or {}
    return json_response(json_ready({
        "rule": rule.name, "id": rule.id, "state": state.get("state", "ok"),
        "history": store().history(rule.id), "deliveries": store().deliveries(rule.id),
        "values": [{"t": p.get("t"), "v": p.get("v")} for p in state.get("values", [])]}))


# silences -------------------------------------------------------------------------------------

def _silence_json(doc: dict[str, Any]) -> dict[str, Any]:
    out = {"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    out["active"] = doc["until"].replace(tzinfo=UTC) > datetime.now(UTC) if doc.get("until") else False
    return out


@bp.get("/api/silences")
def list_silences():
    expired = request.args.get("expired") in ("1", "true")
    return json_response(json_ready({"silences": [_silence_json(s) for s in store().silences(expired)]}))


def _parse_until(body: dict[str, Any]) -> datetime | tuple:
    now = datetime.now(UTC)
    if body.get("for") is not None:
        try:
            until = now + timedelta(seconds=parse_duration(body["for"]))
        except ValueError as exc:
            return _error(str(exc), 400, "for")
    elif isinstance(body.get("until"), str):
        try:
            until = datetime.fromisoformat(body["until"].replace("Z", "+00:00"))
        except ValueError:
            return _error("must be an ISO 8601 time like 2026-11-30T12:00:00Z", 400, "until")
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
    else:
        return _error("give until (an ISO 8601 time) or for (a duration like 2h)", 400, "until")
    if until <= now:
        return _error("must be in the future", 400, "until")
    if until - now > MAX_SILENCE:
        return _error("a silence lasts at most 365 days", 400, "until")
    return until


@bp.post("/api/silences")
@require_role("editor")
def create_silence():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("the body must be a JSON object (a silence)", 400)
    unknown = set(body) - {"rule", "matchers", "until", "for", "comment"}
    if unknown:
        return _error("unknown key", 400, sorted(unknown)[0])
    rule_ref, matchers = body.get("rule"), body.get("matchers") or {}
    if rule_ref is not None and (not isinstance(rule_ref, str) or not rule_ref):
        return _error("must be a rule's id or name", 400, "rule")
    if not isinstance(matchers, dict) or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                                 for k, v in matchers.items()):
        return _error("must map label names to values or globs", 400, "matchers")
    if rule_ref is None and not matchers:
        return _error("a silence names a rule or label matchers", 400, "rule")
    if rule_ref is not None and _find(rule_ref) is None and not any(r.name == rule_ref for r in _all_rules()):
        return _error("no alert rule with this id or name", 400, "rule")
    until = _parse_until(body)
    if not isinstance(until, datetime):
        return until
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        return _error("must be a string", 400, "comment")
    doc = {"rule": rule_ref, "matchers": matchers, "until": until, "comment": (comment or "")[:500],
           "created_by": g.user, "created_at": datetime.now(UTC)}
    silence_id = store().create_silence(doc)
    return json_response(json_ready(_silence_json({"_id": silence_id, **doc})), 201)


@bp.delete("/api/silences/<silence_id>")
@require_role("editor")
def delete_silence(silence_id: str):
    if not store().delete_silence(silence_id):
        return _error("no silence with this id", 404, "id")
    return "", 204


# the page -------------------------------------------------------------------------------------

@bp.get("/alerts")
def page():
    states = store().states()
    rules = [_rule_json(r, states.get(r.id)) for r in _all_rules()]
    editor = current_role() in ("editor", "admin")
    notifiers = sorted(current_app.config["OPSLOG"].alerts.notifiers)
    return render_template("alerts.html", rules=rules, silences=[_silence_json(s) for s in store().silences()],
                           editor=editor, notifiers=notifiers, iso=iso, human=human)
