"""Who may look: sign-in, sessions, CSRF, bearer tokens, the proxy-header and open modes."""

from __future__ import annotations

import pytest
from webui_data import PASSWORD, TOKEN, csrf_from, sign_in
from werkzeug.security import check_password_hash

from webui.auth import hash_password

PROTECTED = ("/api/logs", "/api/histogram", "/api/hosts", "/api/hosts/web-01", "/api/hosts/web-01/calendar",
             "/api/export", "/api/logs/0123456789abcdef01234567/context")
PAGES = ("/", "/tail", "/hosts", "/hosts/web-01", "/export", "/context/0123456789abcdef01234567")


@pytest.mark.parametrize("path", PROTECTED)
def test_the_api_answers_401_without_credentials(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json()["error"].startswith("authentication required")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_strangers_to_the_sign_in_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_a_bearer_token_opens_the_api(client):
    assert client.get("/api/logs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/logs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/logs", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401


def test_sign_in_with_the_right_password_starts_a_hardened_session(client):
    response = sign_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/logs").status_code == 200
    assert "admin" in client.get("/").get_data(as_text=True)


def test_a_wrong_password_or_unknown_user_is_refused(client):
    assert sign_in(client, password="nope").status_code == 401
    assert sign_in(client, user="mallory", password=PASSWORD).status_code == 401
    assert client.get("/api/logs").status_code == 401


def test_sign_in_without_the_csrf_token_is_refused(client):
    client.get("/login")
    response = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/api/logs").status_code == 401


def test_sign_out_needs_the_csrf_token_and_ends_the_session(user):
    assert user.post("/logout").status_code == 400
    assert user.get("/api/logs").status_code == 200
    token = csrf_from(user.get("/").get_data(as_text=True))
    assert user.post("/logout", data={"csrf_token": token}).status_code == 302
    assert user.get("/api/logs").status_code == 401


def test_next_after_sign_in_never_leaves_the_site(client):
    for target, expected in (("/hosts", "/hosts"), ("https://evil.example/", "/"), ("//evil.example/x", "/"),
                             ("/\\evil.example", "/")):
        client.get("/login")
        token = csrf_from(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                                               "next": target})
        assert response.headers["Location"] == expected, target


def test_session_cookie_is_secure_when_not_on_loopback(make_app):
    client = make_app(listen="0.0.0.0:8080").test_client()
    token = csrf_from(client.get("/login", base_url="https://logs.example").get_data(as_text=True))
    response = client.post("/login", base_url="https://logs.example",
                           data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_proxy_header_mode_trusts_the_configured_header_only(make_app):
    client = make_app(auth="proxy_header", proxy_header="X-Remote-User").test_client()
    assert client.get("/api/logs").status_code == 401
    assert client.get("/", headers={"X-Forwarded-User": "alice"}).status_code == 401
    page = client.get("/", headers={"X-Remote-User": "alice"})
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    assert client.get("/api/logs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_auth_none_opens_everything_for_local_trials(make_app):
    client = make_app(auth="none").test_client()
    assert client.get("/api/logs").status_code == 200
    assert client.get("/").status_code == 200


def test_hash_password_makes_a_hash_werkzeug_accepts():
    hashed = hash_password("s3cret")
    assert hashed != "s3cret" and check_password_hash(hashed, "s3cret")
    assert not check_password_hash(hashed, "S3cret")
    with pytest.raises(ValueError):
        hash_password("")


def test_every_answer_carries_the_security_headers(user):
    response = user.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
