"""Who is asking: sign-in and sessions, reverse-proxy header, bearer tokens, CSRF.

Modes (`webui.auth`):
  password      users from the config (name -> werkzeug hash) or MongoDB; a signed session cookie
                (HttpOnly, SameSite=Lax, Secure unless `webui.cookie_secure: false`).
                A session holds its user's session version: the count of the user's
                sign-outs (MongoDB `user_sessions`) and a digest of the user's password
                hash, so signing out or changing the hash ends every session of the user.
                Failed sign-ins are throttled per address and per name (`throttle`).
  proxy_header  a reverse proxy authenticates and sets `webui.proxy_header`
                (default X-Forwarded-User); only requests whose peer address is in
                `webui.trusted_proxies` are believed
In every mode the sign-in throttle takes the client address from X-Forwarded-For
when the peer is one of `webui.trusted_proxies`.
  none          everyone is "anonymous" (local trials only)
In every mode `Authorization: Bearer <token>` with a token from `webui.api_tokens`
is accepted, for scripts. State-changing requests from a session need the
session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`).

Users: `webui.users` (the config) first, then MongoDB's `users` (`opslog user add`); a
config user shadows a MongoDB user of the same name. A removed MongoDB user's sessions
end at their next request (no user, no session); a new password ends them too.

Roles (common.roles: viewer < editor < admin); `current_role()` is the request's role and
`@require_role("editor")` guards a view (403 `{"error", "param": null}` below it):
  config user      `webui.roles[name]`, default admin (the operators who own the file)
  MongoDB user     its `role` field (`opslog user add NAME --role R`, `opslog user role`)
  proxy_header     `webui.roles[name]`, default `webui.proxy_default_role` (viewer)
  bearer token     the `role` of a `{token, role}` entry; a plain string token is a viewer:
                   before roles the API only read, so every existing script keeps working,
                   and a token gets a write only when the file says so
  auth: none       admin (a local trial)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from functools import cache, wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from common.roles import CONFIG_USER_ROLE, PLAIN_TOKEN_ROLE, TRIAL_ROLE, allows
from webui import peers
from webui.accounts import get_accounts
from webui.queries import get_reader
from webui.throttle import HashesBusy, SignInGuard

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "static", "ops.healthz", "ops.metrics", "openapi.openapi"}
# Open and never rendered with the user's name: no session lookup (a database read) for them.
_NO_IDENTITY = OPEN_ENDPOINTS - {"auth.login"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
View = TypeVar("View", bound=Callable[..., Any])


@cache
def _dummy_hash() -> str:
    """Checked against when the user is unknown, so a wrong name costs as long as a wrong password."""
    return generate_password_hash("opslog-timing-equaliser")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _bearer_user() -> tuple[str, str] | None:
    """(user, role) for a known `Authorization: Bearer` token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    web = current_app.config["OPSLOG"].webui
    for known in web.api_tokens:
        if hmac.compare_digest(token.strip().encode(), known.encode()):
            return "api-token", web.api_token_roles.get(known, PLAIN_TOKEN_ROLE)
    return None


def _account(name: str) -> tuple[str, str] | None:
    """(password hash, role) of `name`: a config user, else a MongoDB user, else None."""
    web = current_app.config["OPSLOG"].webui
    if name in web.users:
        return web.users[name], web.roles.get(name, CONFIG_USER_ROLE)
    doc = get_accounts().user(name)
    if doc is None:
        return None
    return doc["password_hash"], doc["role"]


def _session_version(name: str, stored_hash: str) -> str:
    """Changes when `name` signs out anywhere or gets a new password hash."""
    digest = hashlib.sha256(stored_hash.encode()).hexdigest()[:16]
    return f"{get_reader().sign_outs(name)}:{digest}"


def _session_user() -> tuple[str, str] | None:
    """(user, role) of the session, while its user exists and its version holds."""
    name = session.get("user")
    if not isinstance(name, str):
        return None
    account = _account(name)
    if account is None:
        return None
    version = session.get("ver")
    if not isinstance(version, str) or not hmac.compare_digest(version, _session_version(name, account[0])):
        return None
    return name, account[1]


def _current_user() -> tuple[str | None, str, str | None]:
    """(user, how, role): how is 'bearer', 'session', 'proxy' or 'none'."""
    bearer = _bearer_user()
    if bearer:
        return bearer[0], "bearer", bearer[1]
    web = current_app.config["OPSLOG"].webui
    if web.auth == "none":
        return "anonymous", "none", TRIAL_ROLE
    if web.auth == "proxy_header":
        if not peers.from_trusted_proxy():
            return None, "proxy", None
        name = request.headers.get(web.proxy_header, "").strip()[:255]
        if not name:
            return None, "proxy", None
        return name, "proxy", web.roles.get(name, web.proxy_default_role)
    if "user" not in session:
        return None, "session", None
    found = _session_user()
    return (found[0], "session", found[1]) if found else (None, "session", None)


def current_role() -> str | None:
    """The request's role (viewer, editor, admin), None before or without a user."""
    return g.get("role")


def require_role(role: str) -> Callable[[View], View]:
    """A view decorator: below `role`, 403 (`{"error", "param": null}` under /api/, a page elsewhere)."""
    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            have = current_role()
            if not allows(have, role):
                abort(403, description=f"this needs the {role} role (or above); {g.get('user')!r} is "
                                       f"{have or 'without a role'}")
            return view(*args, **kwargs)
        return guarded  # type: ignore[return-value]
    return decorate


@bp.before_app_request
def require_user():
    if request.endpoint in _NO_IDENTITY:
        g.user, g.auth_via, g.role = None, "none", None
        return None
    g.user, g.auth_via, g.role = _current_user()
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if g.user is None:
        if request.path.startswith("/api/"):
            response = jsonify(error="authentication required (sign in or send Authorization: Bearer <token>)",
                               param=None)
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="opslog"'
            return response
        if current_app.config["OPSLOG"].webui.auth == "password":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(401)
    if request.method not in _SAFE_METHODS and g.auth_via != "bearer":
        _check_csrf()
    return None


def _check_csrf() -> None:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="missing or wrong CSRF token; reload the page and try again")


def _safe_next(target: str | None) -> str:
    """Only paths on this site: never an open redirect to another host."""
    if not target:
        return url_for("pages.search")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.search")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    web = current_app.config["OPSLOG"].webui
    if web.auth != "password":
        return redirect(url_for("pages.search"))
    if request.method == "GET":
        return render_template("login.html", error=None, next=_safe_next(request.args.get("next")))
    _check_csrf()
    name = request.form.get("username", "")[:255]
    address = peers.client_address()
    guard: SignInGuard = current_app.extensions["opslog.sign_in_guard"]
    wait = guard.retry_after(address, name)
    if wait:
        log.warning("sign-in throttled: user %r from %s, %ds to wait", name, address, wait)
        return _refused(f"Too many failed sign-ins; try again in {-(-wait // 60)} min.", 429, wait)
    account = _account(name) if name else None
    stored = account[0] if account else None
    try:
        with guard.hash_slot():
            ok = check_password_hash(stored or _dummy_hash(), request.form.get("password", ""))
    except HashesBusy:
        return _refused("The server is busy signing others in; try again in a moment.", 503, 1)
    if not (stored and ok):
        guard.failed(address, name)
        log.info("failed sign-in: user %r from %s", name, address)
        return _refused("Unknown user or wrong password.", 401)
    guard.succeeded(name)
    session.clear()  # a fresh session (and CSRF token) on every sign-in
    session.permanent = True
    session["user"] = name
    session["ver"] = _session_version(name, stored)
    csrf_token()
    return redirect(_safe_next(request.form.get("next")))


def _refused(error: str, status: int, retry_after: int | None = None):
    response = current_app.make_response(
        (render_template("login.html", error=error, next=_safe_next(request.form.get("next"))), status))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.route("/logout", methods=["POST"])
def logout():
    if g.auth_via == "session" and g.user:
        get_reader().end_sessions(g.user)  # this browser's and every other one's
    session.clear()
    if current_app.config["OPSLOG"].webui.auth == "password":
        return redirect(url_for("auth.login"))
    return redirect(url_for("pages.search"))
