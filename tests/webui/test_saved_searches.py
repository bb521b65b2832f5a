"""Saved searches over the API: private to their owner or shared with everyone, written by editors,
changed by their owner or an admin, every bad field a 400 naming it."""

from __future__ import annotations

import orjson
import pytest
from webui_data import csrf_from, sign_in


def body(response) -> dict:
    return orjson.loads(response.data)


@pytest.fixture
def team(make_app, password_hash):
    """Signed-in test clients: ed and fay (editors), vic (viewer), root (admin); `.csrf` on each."""
    app = make_app(users={"root": password_hash, "ed": password_hash, "fay": password_hash, "vic": password_hash},
                   roles={"ed": "editor", "fay": "editor", "vic": "viewer"})
    clients = {}
    for name in ("root", "ed", "fay", "vic"):
        client = app.test_client()
        assert sign_in(client, name).status_code == 302
        client.csrf = csrf_from(client.get("/").get_data(as_text=True))
        clients[name] = client
    return clients


def post(client, payload, url="/api/searches", method="post"):
    return getattr(client, method)(url, json=payload, headers={"X-CSRF-Token": getattr(client, "csrf", "")})


ERRORS = {"name": "errors", "q": "level error", "filters": {"app": "api", "level": ["error", "critical"]},
          "since": "1h", "columns": ["time", "host", "message"]}


def test_an_editor_saves_a_search_and_gets_it_back_with_its_links(team):
    created = post(team["ed"], ERRORS)
    assert created.status_code == 201, created.data
    saved = body(created)
    assert created.headers["Location"].endswith(f"/api/searches/{saved['id']}")
    assert {k: saved[k] for k in ERRORS} == {**ERRORS, "filters": {"host": None, "app": "api", "source": None,
                                                                   "level": ["error", "critical"]}}
    assert saved["owner"] == "ed" and saved["shared"] is False and saved["editable"] is True
    assert saved["url"] == "/?q=level+error&app=api&level=error&level=critical&since=1h&columns=time%2Chost%2Cmessage"
    assert team["ed"].get(f"/api/searches/{saved['id']}").status_code == 200
    opened = team["ed"].get(saved["permalink"])
    assert opened.status_code == 302 and opened.headers["Location"] == saved["url"]
    assert [s["name"] for s in body(team["ed"].get("/api/searches"))["searches"]] == ["errors"]


def test_private_searches_stay_with_their_owner_and_shared_ones_are_listed_for_everyone(team):
    private = body(post(team["ed"], {**ERRORS, "name": "ed's own"}))
    shared = body(post(team["ed"], {**ERRORS, "name": "team errors", "shared": True}))
    fays = body(post(team["fay"], {"name": "fay's own", "q": "timeout"}))

    def names(who):
        return [s["name"] for s in body(team[who].get("/api/searches"))["searches"]]
    assert names("ed") == ["ed's own", "team errors"]
    assert names("fay") == ["fay's own", "team errors"]
    assert names("vic") == ["team errors"]
    assert team["fay"].get(f"/api/searches/{private['id']}").status_code == 404
    assert team["fay"].get(f"/searches/{private['id']}").status_code == 404
    assert team["vic"].get(f"/api/searches/{shared['id']}").status_code == 200
    assert body(team["fay"].get(f"/api/searches/{shared['id']}"))["editable"] is False
    # Only the owner (or an admin) changes or deletes; another editor sees it but may not.
    refused = post(team["fay"], {"name": "mine now"}, f"/api/searches/{shared['id']}", "put")
    assert refused.status_code == 403 and body(refused)["param"] is None
    assert team["fay"].delete(f"/api/searches/{shared['id']}",
                              headers={"X-CSRF-Token": team["fay"].csrf}).status_code == 403
    assert post(team["fay"], {"name": "x"}, f"/api/searches/{private['id']}", "put").status_code == 404
    # An admin may rename and delete anyone's.
    renamed = post(team["root"], {"name": "renamed by root"}, f"/api/searches/{fays['id']}", "put")
    assert renamed.status_code == 200 and body(renamed)["name"] == "renamed by root"
    assert body(renamed)["q"] == "timeout" and body(renamed)["owner"] == "fay", "PUT keeps the fields left out"
    assert team["root"].delete(f"/api/searches/{shared['id']}",
                               headers={"X-CSRF-Token": team["root"].csrf}).status_code == 204
    assert names("vic") == []


def test_the_owner_renames_shares_and_deletes(team):
    saved = body(post(team["ed"], ERRORS))
    url = f"/api/searches/{saved['id']}"
    changed = post(team["ed"], {"name": "errors (api)", "shared": True}, url, "put")
    assert changed.status_code == 200
    after = body(changed)
    assert (after["name"], after["shared"], after["q"], after["since"]) == ("errors (api)", True, "level error", "1h")
    assert after["updated"] >= saved["updated"] and after["created"] == saved["created"]
    assert team["ed"].delete(url, headers={"X-CSRF-Token": team["ed"].csrf}).status_code == 204
    assert team["ed"].get(url).status_code == 404
    assert team["ed"].delete(url, headers={"X-CSRF-Token": team["ed"].csrf}).status_code == 404


def test_a_viewer_reads_but_cannot_save(team):
    refused = post(team["vic"], ERRORS)
    assert refused.status_code == 403
    assert set(body(refused)) == {"error", "param"} and body(refused)["param"] is None
    assert team["vic"].get("/api/searches").status_code == 200


def test_tokens_write_by_their_role(api_as):
    payload = {"name": "from a script", "q": "oom"}
    assert api_as("viewer").post("/api/searches", json=payload).status_code == 403
    created = api_as("editor").post("/api/searches", json=payload)
    assert created.status_code == 201 and body(created)["owner"] == "api-token"
    url = f"/api/searches/{body(created)['id']}"
    assert api_as("viewer").put(url, json={"name": "x"}).status_code == 403
    assert api_as("viewer").delete(url).status_code == 403
    assert api_as("editor").delete(url).status_code == 204


def test_a_session_write_needs_the_csrf_token(team):
    assert team["ed"].post("/api/searches", json=ERRORS).status_code == 400
    assert team["ed"].get("/api/searches").status_code == 200


@pytest.mark.parametrize(("payload", "param"), [
    ({"q": "x"}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"name": "n", "shared": "yes"}, "shared"),
    ({"name": "n", "q": 5}, "q"),
    ({"name": "n", "q": "x" * 501}, "q"),
    ({"name": "n", "filters": ["web-01"]}, "filters"),
    ({"name": "n", "filters": {"hostname": "web-01"}}, "filters.hostname"),
    ({"name": "n", "filters": {"host": 7}}, "filters.host"),
    ({"name": "n", "filters": {"host": "h" * 300}}, "filters.host"),
    ({"name": "n", "filters": {"level": ["loud"]}}, "filters.level"),
    ({"name": "n", "since": "2026-01-01T00:00:00Z"}, "since"),
    ({"name": "n", "since": "0h"}, "since"),
    ({"name": "n", "since": "400d"}, "since"),
    ({"name": "n", "columns": []}, "columns"),
    ({"name": "n", "columns": ["time", "time"]}, "columns"),
    ({"name": "n", "columns": ["colour"]}, "columns"),
    ({"name": "n", "owner": "someone"}, "owner"),
])
def test_every_bad_field_is_a_400_naming_it(api_as, payload, param):
    response = api_as("editor").post("/api/searches", json=payload)
    assert response.status_code == 400, response.data
    assert body(response)["param"] == param, body(response)


def test_q_is_checked_in_the_query_language_with_the_position_of_the_fault(api_as):
    editor = api_as("editor")
    bad = editor.post("/api/searches", json={"name": "n", "q": "level:(error OR critical"})
    assert bad.status_code == 400
    assert body(bad)["param"] == "q" and isinstance(body(bad)["position"], int), body(bad)
    good = editor.post("/api/searches", json={"name": "n", "q": "level:(error OR critical) -app:nginx"})
    assert good.status_code == 201 and body(good)["q"] == "level:(error OR critical) -app:nginx"


def test_a_body_that_is_not_an_object_and_a_name_used_twice_are_refused(api_as):
    editor = api_as("editor")
    for raw in (b"[1, 2]", b"not json", b""):
        response = editor.post("/api/searches", data=raw, content_type="application/json")
        assert response.status_code == 400 and body(response)["param"] is None
    assert editor.post("/api/searches", json={"name": "twice"}).status_code == 201
    again = editor.post("/api/searches", json={"name": "twice"})
    assert again.status_code == 400 and body(again)["param"] == "name"
    other = body(editor.post("/api/searches", json={"name": "other"}))
    clash = editor.put(f"/api/searches/{other['id']}", json={"name": "twice"})
    assert clash.status_code == 400 and body(clash)["param"] == "name"
    assert editor.get("/api/searches/not!an-id").status_code == 404


def test_every_answer_fits_the_openapi_document(api_as, client):
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012
    document = body(client.get("/api/openapi.json"))
    registry = Registry().with_resource("urn:opslog-api", Resource.from_contents(document, DRAFT202012))

    def fits(path: str, method: str, response, sent: dict | None = None) -> None:
        answers = document["paths"][path][method]["responses"]
        status = str(response.status_code)
        assert status in answers, f"{method} {path}: {status} is not documented"
        if sent is not None:
            schema = {"$ref": "urn:opslog-api#/components/schemas/SavedSearchInput"}
            Draft202012Validator(schema, registry=registry).validate(sent)
        if response.status_code == 204:
            return
        where = answers[status].get("$ref") or f"#/paths/{path.replace('/', '~1')}/{method}/responses/{status}"
        schema = {"$ref": f"urn:opslog-api{where}/content/application~1json/schema"}
        validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
        validator.validate(body(response))

    editor, viewer = api_as("editor"), api_as("viewer")
    created = editor.post("/api/searches", json=ERRORS)
    fits("/api/searches", "post", created, ERRORS)
    one = f"/api/searches/{body(created)['id']}"
    fits("/api/searches", "post", editor.post("/api/searches", json={"name": "n", "since": "x"}))
    fits("/api/searches", "post", editor.post("/api/searches", json={"name": "n", "q": "a:(b"}))
    fits("/api/searches", "post", viewer.post("/api/searches", json=ERRORS))
    fits("/api/searches", "get", viewer.get("/api/searches"))
    fits("/api/searches/{search_id}", "get", viewer.get(one))
    fits("/api/searches/{search_id}", "put", editor.put(one, json={"name": "renamed"}), {"name": "renamed"})
    fits("/api/searches/{search_id}", "put", viewer.put(one, json={"name": "x"}))
    fits("/api/searches/{search_id}", "put", editor.put(one, json={"columns": []}))
    fits("/api/searches/{search_id}", "delete", editor.delete(one))
    fits("/api/searches/{search_id}", "delete", editor.delete(one))
    fits("/api/searches", "get", client.get("/api/searches"))
