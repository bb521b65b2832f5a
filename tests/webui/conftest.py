"""Fixtures of the web UI suites: a seeded database, the app and its test client, a live
server and headless Chromium for the browser tests.

Documents are stored by the consumer's own `consumer.store.Store` (`logs`, per-minute
`rollups`, `hosts`, and its indexes), so the UI is tested on exactly what production
writes, without running the pipeline (no broker, no shipper).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo.database import Database
from webui_data import ADMIN_TOKEN, EDITOR_TOKEN, PASSWORD, SECRET_KEY, TOKEN, seed_docs, sign_in
from werkzeug.serving import make_server

from common.config import Config, MongoConfig, WebConfig
from common.passwords import hash_password
from consumer.store import Store as ConsumerStore
from webui import create_app


@pytest.fixture
def now() -> datetime:
    """A fixed 'now' well inside the default 1 h window, whole milliseconds like MongoDB."""
    t = datetime.now(UTC) - timedelta(minutes=5)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@pytest.fixture
def consumer_store(open_store: Callable[..., ConsumerStore]) -> ConsumerStore:
    """The consumer's Store on the test's database, its indexes created (`Store.init`)."""
    store = open_store()
    store.init()
    return store


@pytest.fixture
def db(mongo_uri: str, names, consumer_store: ConsumerStore) -> Iterator[Database]:
    """The test's own database (dropped by `names`), with the consumer's indexes."""
    with pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000) as client:
        yield client[names.database]


@pytest.fixture
def seed(consumer_store: ConsumerStore) -> Callable[[list[dict[str, Any]]], None]:
    """`seed(docs)`: store `docs` as the consumer does."""
    return lambda docs: seed_docs(consumer_store, docs)


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def web_config(password_hash: str, mongo_uri: str, names) -> Callable[..., Config]:
    def build(**webui: Any) -> Config:
        settings = {"listen": "127.0.0.1:0", "auth": "password", "users": {"admin": password_hash},
                    "api_tokens": (TOKEN, EDITOR_TOKEN, ADMIN_TOKEN),
                    "api_token_roles": {EDITOR_TOKEN: "editor", ADMIN_TOKEN: "admin"}, "secret_key": SECRET_KEY}
        settings.update(webui)
        return Config(mongo=MongoConfig(uri=f"{mongo_uri.rstrip('/')}/{names.database}"), webui=WebConfig(**settings))
    return build


@pytest.fixture
def make_app(db: Database, web_config: Callable[..., Config]) -> Callable[..., Flask]:
    def build(**webui: Any) -> Flask:
        app = create_app(web_config(**webui), db=db)
        app.testing = True
        return app
    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Not signed in."""
    return app.test_client()


@pytest.fixture
def user(app: Flask) -> FlaskClient:
    """A test client signed in as admin."""
    client = app.test_client()
    assert sign_in(client).status_code == 302
    return client


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """A test client that authenticates every request with the bearer token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


@pytest.fixture
def api_as(app: Flask) -> Callable[[str], FlaskClient]:
    """`api_as(role)`: a test client sending the bearer token of `role` (viewer: the plain token)."""
    tokens = {"viewer": TOKEN, "editor": EDITOR_TOKEN, "admin": ADMIN_TOKEN}

    def build(role: str) -> FlaskClient:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens[role]}"
        return client
    return build


# ---- browser tests -----------------------------------------------------------------------------

@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a free loopback port, in a thread; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium with a fresh profile, shared by a module's tests."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="opslog-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": profile,
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.download_dir = profile
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
