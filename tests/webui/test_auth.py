"""Who may look: sign-in, sessions, CSRF, bearer tokens, the proxy-header and open modes."""

from __future__ import annotations

import pytest
from webui_data import PASSWORD, TOKEN, csrf_from, sign_in
from werkzeug.security import check_password_hash

from common.passwords import hash_password
from webui.throttle import WINDOW_SECONDS, FailureLimit, SignInGuard

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


def test_session_cookie_is_secure_even_behind_a_loopback_listen(make_app):
    # The deployed UI listens on 127.0.0.1 behind nginx with TLS: its cookie must still be Secure.
    response = sign_in(make_app(listen="127.0.0.1:8080").test_client())
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_cookie_secure_false_drops_the_flag_for_plain_http_trials(make_app):
    client = make_app(listen="0.0.0.0:8080", cookie_secure=False).test_client()
    response = sign_in(client)
    assert response.status_code == 302 and "Secure" not in response.headers["Set-Cookie"]
    assert client.get("/api/logs").status_code == 200


def test_proxy_header_mode_trusts_the_configured_header_only(make_app):
    client = make_app(auth="proxy_header", proxy_header="X-Remote-User", trusted_proxies=("127.0.0.0/8",)).test_client()
    assert client.get("/api/logs").status_code == 401
    assert client.get("/", headers={"X-Forwarded-User": "alice"}).status_code == 401
    page = client.get("/", headers={"X-Remote-User": "alice"})
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    assert client.get("/api/logs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_proxy_header_from_a_peer_outside_trusted_proxies_is_ignored(make_app):
    client = make_app(auth="proxy_header", trusted_proxies=("10.0.0.5", "fd00::/8")).test_client()
    for peer, status in (("203.0.113.9", 401), ("10.0.0.6", 401), ("10.0.0.5", 200), ("fd00::1", 200)):
        response = client.get("/api/logs", headers={"X-Forwarded-User": "alice"}, environ_base={"REMOTE_ADDR": peer})
        assert response.status_code == status, peer
    outside = client.get("/api/logs", headers={"Authorization": f"Bearer {TOKEN}"},
                         environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 200, "a bearer token works from anywhere"


def test_signing_out_ends_the_users_sessions_in_every_browser(app):
    laptop, phone = app.test_client(), app.test_client()
    assert sign_in(laptop).status_code == 302 and sign_in(phone).status_code == 302
    stolen = laptop.get_cookie("opslog_session").value
    token = csrf_from(laptop.get("/").get_data(as_text=True))
    assert laptop.post("/logout", data={"csrf_token": token}).status_code == 302
    assert phone.get("/api/logs").status_code == 401
    replay = app.test_client()
    replay.set_cookie("opslog_session", stolen)
    assert replay.get("/api/logs").status_code == 401
    assert sign_in(phone).status_code == 302 and phone.get("/api/logs").status_code == 200


def test_a_new_password_hash_in_the_config_ends_existing_sessions(app, make_app):
    browser = app.test_client()
    assert sign_in(browser).status_code == 302
    cookie = browser.get_cookie("opslog_session").value
    same = make_app().test_client()  # a restart with the config unchanged keeps the session
    same.set_cookie("opslog_session", cookie)
    assert same.get("/api/logs").status_code == 200
    changed = make_app(users={"admin": hash_password("a new passphrase")}).test_client()
    changed.set_cookie("opslog_session", cookie)
    assert changed.get("/api/logs").status_code == 401
    assert sign_in(changed, password="a new passphrase").status_code == 302


def test_failed_sign_ins_are_throttled_per_user_name_with_retry_after(app):
    app.extensions["opslog.sign_in_guard"] = SignInGuard(per_user=FailureLimit(3))
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, password="guess").status_code == 401
    refused = sign_in(client)  # even the right password: the name is locked for the window
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= WINDOW_SECONDS
    assert sign_in(client, user="bob", password="guess").status_code == 401, "other names are not locked"


def test_failed_sign_ins_are_throttled_per_client_address(app):
    app.extensions["opslog.sign_in_guard"] = SignInGuard(per_address=FailureLimit(3))
    client = app.test_client()
    for name in ("ann", "bob", "cat"):
        assert sign_in(client, user=name, password="guess").status_code == 401
    refused = sign_in(client)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_in(elsewhere).status_code == 302


def test_behind_a_trusted_proxy_the_throttle_counts_the_forwarded_client_address(make_app):
    app = make_app(trusted_proxies=("127.0.0.1/32",))
    app.extensions["opslog.sign_in_guard"] = SignInGuard(per_address=FailureLimit(3))
    guesser, colleague, stranger = app.test_client(), app.test_client(), app.test_client()
    guesser.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.1"
    colleague.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.2"
    for name in ("ann", "bob", "cat"):
        assert sign_in(guesser, user=name, password="guess").status_code == 401
    assert sign_in(guesser).status_code == 429
    assert sign_in(colleague).status_code == 302, "the proxy's other clients are not locked out"
    # Not from a trusted proxy: X-Forwarded-For is the client's own word and is ignored.
    stranger.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for hop in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"):
        stranger.environ_base["HTTP_X_FORWARDED_FOR"] = hop
        status = sign_in(stranger, user=f"u{hop}", password="guess").status_code
    assert status == 429


def test_sign_in_answers_503_when_every_password_hash_slot_is_taken(app):
    guard = app.extensions["opslog.sign_in_guard"] = SignInGuard(concurrent_hashes=1)
    client = app.test_client()
    with guard.hash_slot():
        busy = sign_in(client)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert sign_in(client).status_code == 302


def test_failure_limit_forgets_a_key_after_its_window_and_stays_bounded():
    now = [1000.0]
    limit = FailureLimit(2, window=60, max_keys=3, clock=lambda: now[0])
    limit.failed("a")
    limit.failed("a")
    assert limit.retry_after("a") == 60
    now[0] += 45
    assert limit.retry_after("a") == 15
    now[0] += 15
    assert limit.retry_after("a") == 0
    for key in ("b", "c", "d", "e"):
        limit.failed(key)
        limit.failed(key)
    assert limit.retry_after("b") == 0 and limit.retry_after("e") == 60, "only the 3 most recent keys are kept"


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
