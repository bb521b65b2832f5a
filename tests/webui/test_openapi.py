"""/api/openapi.json is true: every /api route is in it and nothing else, and real answers fit its schemas."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from webui_data import file_lines, make_doc

from webui.params import iso

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # werkzeug answers both for every GET route by itself


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            found |= {(path, m.lower()) for m in rule.methods - IGNORED_METHODS}
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item
            if method in ("get", "put", "post", "delete", "patch")}


@pytest.fixture
def document(client) -> dict[str, Any]:
    response = client.get("/api/openapi.json")  # open: no credentials
    assert response.status_code == 200 and response.mimetype == "application/json"
    return orjson.loads(response.data)


def test_the_document_lists_exactly_the_api_routes_of_the_app(app, document):
    assert document["openapi"].startswith("3.")
    assert routes(app) == documented(document)


def check(document: dict[str, Any], path: str, response) -> None:
    """`response` (to GET `path`) has a status the document lists for it, and a body that fits."""
    body = response.get_data()  # also ends a streamed export
    responses = document["paths"][path]["get"]["responses"]
    status = str(response.status_code)
    assert status in responses, f"GET {path}: {status} is not documented"
    # where the answer is described: a shared one in components, or in place
    where = responses[status].get("$ref") or "#/" + _pointer("paths", path, "get", "responses", status)
    answer = document
    for part in where[2:].split("/"):
        answer = answer[part.replace("~1", "/").replace("~0", "~")]
    assert response.mimetype in answer["content"], f"GET {path} {status}: {response.mimetype} not documented"
    if response.mimetype != "application/json":
        return
    registry = Registry().with_resource("urn:opslog-api", Resource.from_contents(document, DRAFT202012))
    schema = {"$ref": f"urn:opslog-api{where}/" + _pointer("content", response.mimetype, "schema")}
    validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(orjson.loads(body))]
    assert not errors, f"GET {path} {status}: {errors}"


def test_real_answers_of_every_operation_fit_the_document(api, client, seed, now, document):
    lines = file_lines([f"line {i}" for i in range(5)], now - timedelta(minutes=1), level="error",
                       fields={"status": 502, "nested": {"a": [1, 2]}})
    seed(lines + [make_doc(now, "no level", host="db-01", level=None, parse_error="no match")])
    since = iso(now - timedelta(hours=2))
    asked = {
        "/api/logs": [f"/api/logs?since={since}&limit=2", "/api/logs?level=loud", "/api/logs?limit=x",
                      f"/api/logs?since={since}&q=status%3E%3D500", "/api/logs?q=level%3A(error"],
        "/api/logs/{record_id}/context": [f"/api/logs/{lines[2]['_id']}/context?before=1&after=1",
                                          "/api/logs/0123456789abcdef01234567/context", "/api/logs/bad!/context"],
        "/api/histogram": [f"/api/histogram?since={since}&q=line", "/api/histogram?since=400d",
                           "/api/histogram?since=x"],
        "/api/hosts": ["/api/hosts"],
        "/api/fields": ["/api/fields", "/api/fields?app=nginx", "/api/fields?app=%01"],
        "/api/hosts/{host}": ["/api/hosts/web-01", "/api/hosts/nowhere"],
        "/api/hosts/{host}/calendar": ["/api/hosts/web-01/calendar?days=3", "/api/hosts/web-01/calendar?days=0",
                                       "/api/hosts/a%2Fb/calendar"],
        "/api/hosts/{host}/files": ["/api/hosts/web-01/files"],
        "/api/hosts/{host}/verify": ["/api/hosts/web-01/verify"],
        "/api/export": [f"/api/export?since={since}", f"/api/export?since={since}&format=csv",
                        "/api/export?format=xml"],
        "/api/fields/{field}/top": [f"/api/fields/status/top?since={since}", "/api/fields/$x/top"],
        "/api/tail": ["/api/tail?cursor=dDA&limit=3", "/api/tail?q=line", "/api/tail?cursor=bad"],
        "/api/openapi.json": ["/api/openapi.json"],
        "/api/me": ["/api/me"],
        "/api/users": ["/api/users"],  # a plain token is a viewer: 403
        "/api/searches": ["/api/searches"],
        "/api/searches/{search_id}": ["/api/searches/AAAAAAAAAAAAAAAA"],
        "/api/alerts": ["/api/alerts"],
        "/api/alerts/{rule_id}": ["/api/alerts/no-such-rule"],
        "/api/alerts/{rule_id}/history": ["/api/alerts/no-such-rule/history"],
        "/api/silences": ["/api/silences", "/api/silences?expired=1"],
    }
    # every GET; the writes are checked by their own tests (tests/test_alerts_api.py)
    assert set(asked) == {path for path, method in documented(document) if method == "get"}
    seen: set[tuple[str, int]] = set()
    for path, urls in asked.items():
        for url in urls:
            response = api.get(url)
            check(document, path, response)
            seen.add((path, response.status_code))
        if path != "/api/openapi.json":
            check(document, path, client.get(urls[0]))  # no credentials
    # the requests above really reached each kind of answer
    assert {status for _, status in seen} == {200, 400, 403, 404}
    assert ("/api/logs", 200) in seen and ("/api/export", 200) in seen and ("/api/hosts/{host}", 404) in seen


def test_every_api_error_has_error_and_param_and_a_405_keeps_its_allow_header(api, client):
    for response in (client.get("/api/logs"), api.get("/api/nothing-here"), api.post("/api/logs"),
                     api.get("/api/logs?limit=x")):
        body = orjson.loads(response.data)
        assert set(body) == {"error", "param"}, (response.status_code, body)
    assert set(api.post("/api/logs").headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
