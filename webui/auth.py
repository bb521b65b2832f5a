"""Who is asking: sign-in and sessions, reverse-proxy header, bearer tokens, CSRF.

Modes (`webui.auth`):
  password      users from config (name -> werkzeug hash); a signed session cookie
                (HttpOnly, SameSite=Lax, Secure unless bound to loopback)
  proxy_header  a reverse proxy authenticates and sets `webui.proxy_header`
                (default X-Forwarded-User); the proxy must strip it from clients
  none          everyone is "anonymous" (local trials only)
In every mode `Authorization: Bearer <token>` with a token from `webui.api_tokens`
is accepted, for scripts. State-changing requests from a session need the
session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import hmac
import secrets
from functools import cache
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "static", "ops.healthz", "ops.metrics", "openapi.openapi"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@cache
def _dummy_hash() -> str:
    """Checked against when the user is unknown, so a wrong name costs as long as a wrong password."""
    return generate_password_hash("opslog-timing-equaliser")


def hash_password(password: str) -> str:
    """A werkzeug password hash for `webui.users` (what `opslog hash-password` prints)."""
    if not password:
        raise ValueError("the password must not be empty")
    return generate_password_hash(password)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _bearer_user() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    for known in current_app.config["OPSLOG"].webui.api_tokens:
        if hmac.compare_digest(token.strip().encode(), known.encode()):
            return "api-token"
    return None


def _current_user() -> tuple[str | None, str]:
    """(user, how): how is 'bearer', 'session', 'proxy' or 'none'."""
    user = _bearer_user()
    if user:
        return user, "bearer"
    web = current_app.config["OPSLOG"].webui
    if web.auth == "none":
        return "anonymous", "none"
    if web.auth == "proxy_header":
        name = request.headers.get(web.proxy_header, "").strip()
        return (name[:255] or None), "proxy"
    name = session.get("user")
    return (name if name in web.users else None), "session"


@bp.before_app_request
def require_user():
    g.user, g.auth_via = _current_user()
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
    error = None
    if request.method == "POST":
        _check_csrf()
        name = request.form.get("username", "")
        stored = web.users.get(name)
        ok = check_password_hash(stored or _dummy_hash(), request.form.get("password", ""))
        if stored and ok:
            session.clear()  # a fresh session (and CSRF token) on every sign-in
            session.permanent = True
            session["user"] = name
            csrf_token()
            return redirect(_safe_next(request.form.get("next")))
        error = "Unknown user or wrong password."
    return render_template("login.html", error=error, next=_safe_next(request.args.get("next"))), \
        (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    if current_app.config["OPSLOG"].webui.auth == "password":
        return redirect(url_for("auth.login"))
    return redirect(url_for("pages.search"))
