"""/api/alerts and /api/silences: editors write, viewers read, config rules stay read-only, bodies are
checked like the config, and the answers fit the OpenAPI document."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from webui_data import EDITOR_TOKEN, TOKEN, sign_in

from common.config import parse_config
from webui import create_app

CONFIG_ALERTS = {
    "notifiers": {"ops-hook": {"type": "webhook", "url": "https://hooks.example/opslog"}},
    "rules": [{"name": "payment-errors", "kind": "count", "query": "level:error app:payments", "window": "5m",
               "above": 20, "notify": ["ops-hook"]}],
}
NEW_RULE = {"name": "web-5xx", "kind": "ratio", "query": "app:nginx status>=500", "of": "app:nginx",
            "window": "10m", "above": 0.05, "for": "2m", "notify": ["ops-hook"]}


@pytest.fixture
def alerts_app(db, web_config, password_hash):
    config = replace(web_config(users={"admin": password_hash, "vera": password_hash}, roles={"vera": "viewer"}),
                     alerts=parse_config({"alerts": CONFIG_ALERTS}).alerts)
    app = create_app(config, db=db)
    app.testing = True
    return app


def bearer(app, token: str):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def editor(alerts_app):
    return bearer(alerts_app, EDITOR_TOKEN)


@pytest.fixture
def viewer(alerts_app):
    return bearer(alerts_app, TOKEN)


@pytest.fixture
def fits(alerts_app):
    """`fits(path, method, response)`: the answer has a documented status and its body fits the schema."""
    document = orjson.loads(alerts_app.test_client().get("/api/openapi.json").data)
    registry = Registry().with_resource("urn:opslog-api", Resource.from_contents(document, DRAFT202012))

    def check(path: str, method: str, response) -> None:
        responses = document["paths"][path][method]["responses"]
        status = str(response.status_code)
        assert status in responses, f"{method.upper()} {path}: {status} is not documented"
        if response.status_code == 204:
            return
        where = responses[status].get("$ref") or "#/paths/" + path.replace("~", "~0").replace("/", "~1") \
            + f"/{method}/responses/{status}"
        schema = {"$ref": f"urn:opslog-api{where}/content/application~1json/schema"}
        validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.get_json())]
        assert not errors, f"{method.upper()} {path} {status}: {errors}"
    return check


def test_an_editor_creates_edits_lists_and_deletes_a_rule(editor, fits):
    created = editor.post("/api/alerts", json=NEW_RULE)
    fits("/api/alerts", "post", created)
    assert created.status_code == 201, created.get_json()
    rule = created.get_json()
    assert rule["source"] == "api" and rule["for"] == 120 and rule["window"] == 600 and rule["threshold"] == 0.05
    assert rule["status"]["state"] == "ok"

    listed = editor.get("/api/alerts")
    fits("/api/alerts", "get", listed)
    assert [(r["name"], r["source"]) for r in listed.get_json()["rules"]] == [("payment-errors", "config"),
                                                                             ("web-5xx", "api")]
    changed = editor.put(f"/api/alerts/{rule['id']}", json={**NEW_RULE, "above": 0.1})
    fits("/api/alerts/{rule_id}", "put", changed)
    assert changed.status_code == 200 and changed.get_json()["above"] == 0.1
    got = editor.get(f"/api/alerts/{rule['id']}")
    fits("/api/alerts/{rule_id}", "get", got)
    assert got.get_json()["above"] == 0.1
    history = editor.get(f"/api/alerts/{rule['id']}/history")
    fits("/api/alerts/{rule_id}/history", "get", history)
    assert history.get_json()["history"] == [] and history.get_json()["deliveries"] == []

    assert editor.post("/api/alerts", json=NEW_RULE).status_code == 409, "names are unique"
    deleted = editor.delete(f"/api/alerts/{rule['id']}")
    fits("/api/alerts/{rule_id}", "delete", deleted)
    assert deleted.status_code == 204
    assert editor.get(f"/api/alerts/{rule['id']}").status_code == 404


def test_config_rules_are_listed_read_only(editor, fits):
    rule = editor.get("/api/alerts/config:payment-errors").get_json()
    assert rule["source"] == "config" and rule["query"] == "level:error app:payments"
    for response, method in ((editor.put("/api/alerts/config:payment-errors", json=CONFIG_ALERTS["rules"][0]), "put"),
                             (editor.delete("/api/alerts/config:payment-errors"), "delete")):
        fits("/api/alerts/{rule_id}", method, response)
        assert response.status_code == 409 and "config file" in response.get_json()["error"]
    taken = editor.post("/api/alerts", json={**NEW_RULE, "name": "payment-errors"})
    assert taken.status_code == 409 and taken.get_json()["param"] == "name"


@pytest.mark.parametrize(("body", "param", "words"), [
    ({**NEW_RULE, "window": "soon"}, "window", "duration"),
    ({**NEW_RULE, "query": "status>=(500"}, "query", "at character 9"),
    ({**NEW_RULE, "notify": ["pager"]}, "notify", "no notifier named 'pager'"),
    ({k: v for k, v in NEW_RULE.items() if k != "above"}, "above", "exactly one of above or below"),
    ({**NEW_RULE, "kind": "silence"}, "above", "silence"),
    ({**NEW_RULE, "name": "has space"}, "name", "letters"),
    ({**NEW_RULE, "color": "red"}, "color", "unknown key"),
])
def test_a_bad_rule_is_a_400_naming_the_key(editor, fits, body, param, words):
    response = editor.post("/api/alerts", json=body)
    fits("/api/alerts", "post", response)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["param"] == param and words in answer["error"], answer


def test_viewers_read_but_get_403_on_every_write(alerts_app, viewer, editor, fits):
    rule_id = editor.post("/api/alerts", json=NEW_RULE).get_json()["id"]
    silence_id = editor.post("/api/silences", json={"rule": "web-5xx", "for": "1h"}).get_json()["id"]
    assert viewer.get("/api/alerts").status_code == 200
    assert viewer.get(f"/api/alerts/{rule_id}/history").status_code == 200
    refused = [
        ("/api/alerts", "post", viewer.post("/api/alerts", json={**NEW_RULE, "name": "other"})),
        ("/api/alerts/{rule_id}", "put", viewer.put(f"/api/alerts/{rule_id}", json=NEW_RULE)),
        ("/api/alerts/{rule_id}", "delete", viewer.delete(f"/api/alerts/{rule_id}")),
        ("/api/silences", "post", viewer.post("/api/silences", json={"rule": "web-5xx", "for": "1h"})),
        ("/api/silences/{silence_id}", "delete", viewer.delete(f"/api/silences/{silence_id}")),
    ]
    for path, method, response in refused:
        fits(path, method, response)
        assert response.status_code == 403, (path, method)
        assert response.get_json()["param"] is None and "editor" in response.get_json()["error"]
    # a signed-in viewer (a session, with its CSRF token) is refused the same way
    vera = alerts_app.test_client()
    assert sign_in(vera, "vera").status_code == 302
    page = vera.get("/alerts").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    assert 'id="rule-form"' not in page, "no rule form for a viewer"
    assert vera.post("/api/alerts", json={**NEW_RULE, "name": "vera"}, headers={"X-CSRF-Token": token}
                     ).status_code == 403
    assert [r["name"] for r in viewer.get("/api/alerts").get_json()["rules"]] == ["payment-errors", "web-5xx"]


def test_silences_are_created_listed_and_ended(editor, fits):
    created = editor.post("/api/silences", json={"matchers": {"host": "web-*"}, "for": "2h", "comment": "deploy"})
    fits("/api/silences", "post", created)
    assert created.status_code == 201
    silence = created.get_json()
    assert silence["active"] and silence["matchers"] == {"host": "web-*"}
    listed = editor.get("/api/silences")
    fits("/api/silences", "get", listed)
    assert [s["id"] for s in listed.get_json()["silences"]] == [silence["id"]]
    for body, param in (({"for": "2h"}, "rule"), ({"rule": "nope", "for": "1h"}, "rule"),
                        ({"rule": "payment-errors", "until": "2001-01-01T00:00:00Z"}, "until"),
                        ({"rule": "payment-errors", "for": "often"}, "for")):
        bad = editor.post("/api/silences", json=body)
        fits("/api/silences", "post", bad)
        assert (bad.status_code, bad.get_json()["param"]) == (400, param), body
    ended = editor.delete(f"/api/silences/{silence['id']}")
    fits("/api/silences/{silence_id}", "delete", ended)
    assert ended.status_code == 204 and editor.get("/api/silences").get_json()["silences"] == []
    assert editor.delete(f"/api/silences/{silence['id']}").status_code == 404


def test_the_alerts_page_lists_rules_for_editors_with_the_forms(alerts_app, editor):
    admin = alerts_app.test_client()
    assert sign_in(admin).status_code == 302
    page = admin.get("/alerts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "payment-errors" in html and 'id="rule-form"' in html and 'id="silence-form"' in html
    assert "/static/alerts.js" in html
