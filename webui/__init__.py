"""opslog's web UI and JSON API: `create_app(config)` builds it, `webui.server.serve(config)` serves it.

A request goes down through three layers, and imports point the same way:

* views, one blueprint per concern: `auth` (who is asking: sessions, bearer tokens,
  proxy header; roles and `require_role`), `api` (JSON), `tail` (the live tail, JSON or
  Server-Sent Events), `pages` (HTML), `openapi` (the
  API's document), `ops` (health, metrics), `saved` (saved searches, with `saved_body`
  checking their bodies), `team` (`/api/me`, `/api/users`), `fieldstats` (a field's top
  values, JSON), `querybar` (the query language's help page, the search page's field
  lists); with their helpers `formats` (records as JSON, NDJSON, CSV), `streams` (how
  many downloads may stream at once), `throttle` (failed sign-ins), `peers` (which
  proxies to believe).
* `params`: HTTP in, the query layer's types out (`Filters`, `Cursor`) or a
  `ParamError` naming the parameter (a 400); and `query_args`, back to links.
* `accounts`: users kept in MongoDB and saved searches (`accounts.AccountStore`, the
  web side's writes; `get_accounts()` in a view) and the `opslog user` commands.
* `queries`: every read, behind `queries.LogReader` (`get_reader()` in a view), the
  only other thing that talks to MongoDB. Neither imports anything above it.

Its commands, `opslog web`, `opslog hash-password` and `opslog user`, live in `webui.cli` (the
`opslog.commands` entry points); webui builds on common/ alone.

`config` is always the whole `common.config.Config`; `web` is its `webui` section,
`mongo` its `mongo` section.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from common.config import Config
from common.errors import StoreUnavailable
from webui import api, auth, coverage, fieldstats, openapi, ops, pages, peers, querybar, saved, tail, team
from webui.accounts import AccountStore
from webui.alerts import views as alert_views
from webui.formats import json_response
from webui.params import ParamError
from webui.queries import LogReader, open_database
from webui.streams import StreamSlots
from webui.throttle import SignInGuard

if TYPE_CHECKING:
    from pymongo.database import Database

log = logging.getLogger(__name__)
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def create_app(config: Config, db: Database | None = None) -> Flask:
    """The Flask app for `config`; `db` (a pymongo Database) replaces the one from `config.mongo`."""
    app = Flask(__name__)
    web = config.webui
    secret = web.secret_key
    if not secret:
        log.warning("webui.secret_key is not set: using a random key, sessions end when the UI restarts")
        secret = os.urandom(32).hex()
    app.config.update(
        OPSLOG=config, SECRET_KEY=secret, OPSLOG_STALE_AFTER=int(web.stale_after),
        SESSION_COOKIE_NAME="opslog_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        # Browsers send a Secure cookie over https, and over plain http to localhost/127.0.0.1 only.
        SESSION_COOKIE_SECURE=web.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12), MAX_CONTENT_LENGTH=64 * 1024,
    )
    if db is None:
        db = open_database(config.mongo)
        app.extensions["opslog.client"] = db.client
    app.extensions["opslog.reader"] = LogReader(db, query_timeout=web.query_timeout, word_search=web.word_search)
    app.extensions["opslog.accounts"] = AccountStore(db, timeout=web.query_timeout)
    app.extensions["opslog.trusted_proxies"] = peers.trusted_networks(web.trusted_proxies)
    app.extensions["opslog.sign_in_guard"] = SignInGuard()

    ops.Metrics().install(app)
    StreamSlots(web.max_streams).install(app)
    for blueprint in (auth.bp, api.bp, tail.bp, coverage.bp, fieldstats.bp, openapi.bp, pages.bp, querybar.bp, ops.bp,
                      team.bp, saved.bp):
        app.register_blueprint(blueprint)
    alert_views.install(app, db)  # /api/alerts, /api/silences, /alerts (issue 16)
    app.jinja_env.globals["csrf_token"] = auth.csrf_token
    pages.install_filters(app)
    _install_error_handlers(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ParamError)
    def bad_param(exc: ParamError):
        if _wants_json():
            body = {"error": exc.error, "param": exc.param}
            if exc.position is not None:
                body["position"] = exc.position
            return json_response(body, 400)
        return render_template("error.html", status=400, message=f"{exc.param}: {exc.error}"), 400

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable):
        log.warning("%s", exc)
        app.extensions["opslog.metrics"].store_errors.inc()
        if _wants_json():
            return json_response({"error": "the database is unavailable, try again shortly", "param": None}, 503)
        return render_template("error.html", status=503,
                               message="The database is unavailable; try again shortly."), 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if _wants_json():
            # Every API error has the same body, `param` null when no parameter is at fault; the
            # exception's own headers (Allow on a 405) are kept.
            response = json_response({"error": exc.description or exc.name, "param": None}, exc.code or 500)
            for name, value in exc.get_headers():
                if name.lower() != "content-type":
                    response.headers[name] = value
            return response
        return render_template("error.html", status=exc.code, message=exc.description or exc.name), exc.code


def close_app(app: Flask) -> None:
    """Close the MongoDB client the app opened (not one passed in as `db`)."""
    client = app.extensions.pop("opslog.client", None)
    if client is not None:
        client.close()

