"""Roles, viewer < editor < admin: who gets which, from the config, tokens, the proxy and the trial mode;
`require_role` answers 403 below the role it names."""

from __future__ import annotations

import orjson
import pytest
from webui_data import ADMIN_TOKEN, TOKEN, sign_in

from common.config import parse_config
from common.errors import ConfigError


def me(client) -> dict:
    response = client.get("/api/me")
    assert response.status_code == 200, response.data
    return orjson.loads(response.data)


def test_a_config_user_is_an_admin_unless_webui_roles_lowers_it(make_app, password_hash):
    app = make_app(users={"admin": password_hash, "olga": password_hash}, roles={"olga": "viewer"})
    admin, olga = app.test_client(), app.test_client()
    assert sign_in(admin).status_code == 302 and sign_in(olga, "olga").status_code == 302
    assert me(admin) == {"user": "admin", "role": "admin", "via": "session"}
    assert me(olga)["role"] == "viewer"
    assert admin.get("/api/users").status_code == 200
    refused = olga.get("/api/users")
    assert refused.status_code == 403
    body = orjson.loads(refused.data)
    assert set(body) == {"error", "param"} and body["param"] is None and "admin" in body["error"]


def test_a_plain_token_is_a_viewer_and_a_token_entry_carries_its_role(api_as):
    assert me(api_as("viewer")) == {"user": "api-token", "role": "viewer", "via": "bearer"}
    assert me(api_as("editor"))["role"] == "editor"
    assert me(api_as("admin"))["role"] == "admin"
    # the plain token reads as before
    assert api_as("viewer").get("/api/logs").status_code == 200
    assert [api_as(r).get("/api/users").status_code for r in ("viewer", "editor", "admin")] == [403, 403, 200]


def test_users_api_lists_config_users_with_their_roles(make_app, password_hash):
    app = make_app(users={"admin": password_hash, "olga": password_hash}, roles={"olga": "editor"})
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    users = orjson.loads(client.get("/api/users").data)["users"]
    assert [(u["name"], u["role"], u["source"]) for u in users] == [("admin", "admin", "config"),
                                                                  ("olga", "editor", "config")]


def test_proxy_users_get_their_webui_roles_entry_or_the_default_role(make_app):
    app = make_app(auth="proxy_header", trusted_proxies=("127.0.0.0/8",), roles={"erin": "editor"})
    client = app.test_client()
    erin = me_with(client, {"X-Forwarded-User": "erin"})
    vic = me_with(client, {"X-Forwarded-User": "vic"})
    assert (erin["user"], erin["role"], erin["via"]) == ("erin", "editor", "proxy")
    assert (vic["user"], vic["role"]) == ("vic", "viewer")
    raised = make_app(auth="proxy_header", trusted_proxies=("127.0.0.0/8",), proxy_default_role="editor")
    assert me_with(raised.test_client(), {"X-Forwarded-User": "vic"})["role"] == "editor"


def me_with(client, headers: dict) -> dict:
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 200, response.data
    return orjson.loads(response.data)


def test_auth_none_is_a_local_trial_with_every_right(make_app):
    client = make_app(auth="none").test_client()
    assert me(client) == {"user": "anonymous", "role": "admin", "via": "none"}
    assert client.get("/api/users").status_code == 200


def test_without_credentials_the_role_check_is_a_401_not_a_403(client):
    assert client.get("/api/users").status_code == 401


BASE = {"mongo": {"uri": "mongodb://127.0.0.1:27017/logs"}}
LONG = "x" * 24


def test_config_api_tokens_take_plain_strings_and_token_role_entries():
    cfg = parse_config({**BASE, "webui": {"api_tokens": [TOKEN, {"token": LONG, "role": "editor"}],
                                          "roles": {"olga": "viewer"}, "proxy_default_role": "editor"}}, {})
    assert cfg.webui.api_tokens == (TOKEN, LONG)
    assert cfg.webui.api_token_roles == {LONG: "editor"}
    assert cfg.webui.roles == {"olga": "viewer"} and cfg.webui.proxy_default_role == "editor"


@pytest.mark.parametrize(("webui", "key"), [
    ({"api_tokens": [{"token": LONG, "role": "root"}]}, "webui.api_tokens"),
    ({"api_tokens": [{"token": LONG, "role": "editor", "name": "x"}]}, "webui.api_tokens"),
    ({"api_tokens": [{"token": "short", "role": "editor"}]}, "webui.api_tokens[0]"),
    ({"roles": {"olga": "superuser"}}, "webui.roles"),
    ({"proxy_default_role": "owner"}, "webui.proxy_default_role"),
])
def test_a_bad_role_or_token_entry_is_reported_with_its_key(webui, key):
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, "webui": {"api_tokens": [TOKEN], **webui}}, {})
    assert [p.split(": ")[0] for p in info.value.problems] == [key], info.value.problems
