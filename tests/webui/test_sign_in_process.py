"""Sign-in as a real `opslog web` process serves it: the cookie flags, sign-out, throttling, and
the start-up refusals, over real HTTP from a real peer address."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_opslog, stop, wait_until
from webui_data import PASSWORD, SECRET_KEY, TOKEN, csrf_from

from common.localservices import free_port

DEAD_BROKER = {"url": "amqp://guest:guest@127.0.0.1:1/%2F"}  # the UI needs none; keeps the session broker off


class Browser:
    """Just enough of one: keeps the session cookie (Secure or not) and sends it back."""

    def __init__(self, base: str, cookie: str | None = None):
        self.host, _, port = base.removeprefix("http://").partition(":")
        self.port, self.cookie = int(port), cookie

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Cookie": f"opslog_session={self.cookie}"} if self.cookie else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.text = response.read().decode()  # type: ignore[attr-defined]
        connection.close()
        set_cookie = response.getheader("Set-Cookie") or ""
        if set_cookie.startswith("opslog_session="):
            self.cookie = set_cookie.partition("=")[2].partition(";")[0]
        return response

    def sign_in(self, password: str = PASSWORD) -> http.client.HTTPResponse:
        token = csrf_from(self.request("GET", "/login").text)  # type: ignore[attr-defined]
        return self.request("POST", "/login", {"username": "admin", "password": password, "csrf_token": token})


def _healthy(base: str) -> bool:
    try:
        return Browser(base).request("GET", "/healthz").status == 200
    except OSError:
        return False


@pytest.fixture
def opslog_web(tmp_path: Path, write_config, mongo_uri: str, password_hash: str) -> Iterator[str]:
    """`opslog web` with password sign-in on a free loopback port; its base URL."""
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, amqp=DEAD_BROKER, webui={
        "listen": listen, "auth": "password", "users": {"admin": password_hash}, "api_tokens": [TOKEN],
        "secret_key": SECRET_KEY})
    proc = run_opslog("web", config=config)
    try:
        wait_until(lambda: _healthy(f"http://{listen}") or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, proc.output()
        yield f"http://{listen}"
    finally:
        stop(proc)


def test_sign_out_ends_the_session_even_for_a_copy_of_its_cookie(opslog_web):
    browser = Browser(opslog_web)
    signed_in = browser.sign_in()
    assert signed_in.status == 302
    copy = Browser(opslog_web, cookie=browser.cookie)
    assert copy.request("GET", "/api/logs").status == 200
    token = csrf_from(browser.request("GET", "/").text)
    assert browser.request("POST", "/logout", {"csrf_token": token}).status == 302
    assert copy.request("GET", "/api/logs").status == 401
    flags = [f.strip().lower() for f in signed_in.getheader("Set-Cookie").split(";")]
    assert {"secure", "httponly", "samesite=lax"} <= set(flags), "Secure even though opslog web listens on loopback"


def test_guesses_at_one_user_name_get_429_with_retry_after(opslog_web):
    browser = Browser(opslog_web)
    for _ in range(10):
        assert browser.sign_in(password="guess").status == 401
    throttled = browser.sign_in()
    assert throttled.status == 429
    assert 0 < int(throttled.getheader("Retry-After")) <= 15 * 60
    assert "Too many failed sign-ins" in throttled.text
    bearer = http.client.HTTPConnection(*opslog_web.removeprefix("http://").split(":"), timeout=30)
    bearer.request("GET", "/api/logs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.getresponse().status == 200, "scripts with a token are not locked out"
    bearer.close()


def test_proxy_header_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(tmp_path, write_config, mongo_uri):
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, amqp=DEAD_BROKER, webui={
        "listen": listen, "auth": "proxy_header", "trusted_proxies": ["10.0.0.0/8"], "secret_key": SECRET_KEY})
    proc = run_opslog("web", config=config)
    try:
        wait_until(lambda: _healthy(f"http://{listen}") or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, proc.output()
        connection = http.client.HTTPConnection("127.0.0.1", int(listen.rpartition(":")[2]), timeout=30)
        connection.request("GET", "/api/logs", headers={"X-Forwarded-User": "admin"})
        assert connection.getresponse().status == 401
        connection.close()
    finally:
        stop(proc)


def test_opslog_web_refuses_auth_none_beyond_loopback_without_the_opt_in(tmp_path, write_config):
    config = write_config(tmp_path, amqp=DEAD_BROKER, mongo={"uri": "mongodb://127.0.0.1:1/opslog"},
                          webui={"listen": f"0.0.0.0:{free_port()}", "auth": "none"})
    proc = run_opslog("web", config=config)
    try:
        assert proc.wait(timeout=60) == 1
    finally:
        stop(proc)
    assert "webui.allow_insecure_auth: auth is 'none' and listen '0.0.0.0:" in proc.output()
