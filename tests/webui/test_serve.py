"""`serve(config)`: the UI as `opslog web` runs it, behind waitress, in its own process, stopped by SIGTERM."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from helpers import REPO_ROOT, wait_until

from common.config import parse_config
from common.errors import ConfigError
from common.localservices import free_port

SCRIPT = """
import json, sys
from common.config import Config, MongoConfig, WebConfig
from common.logsetup import setup_logging
from webui.server import serve
setup_logging("info")
serve(Config(mongo=MongoConfig(uri=sys.argv[1]), webui=WebConfig(**json.loads(sys.argv[2]))))
"""


def _health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


@contextmanager
def served(mongo_uri: str, database: str, **webui: object) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    listen = f"127.0.0.1:{free_port()}"
    settings = json.dumps({"listen": listen, "auth": "none", "secret_key": secrets.token_hex(32), **webui})
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, f"{mongo_uri.rstrip('/')}/{database}", settings],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _health(f"http://{listen}"), timeout=20) == {"status": "ok",
                                                                               "checks": {"database": True}}
        yield listen, process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_serve_answers_on_its_address_and_stops_cleanly_on_sigterm(mongo_uri, names):
    with served(mongo_uri, names.database) as (listen, process):
        with urllib.request.urlopen(f"http://{listen}/api/logs", timeout=5) as response:
            assert json.loads(response.read()) == {"records": [], "next_cursor": None}
            assert response.headers["Server"] == "opslog"  # waitress with our ident, not werkzeug's dev server
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "web UI stopped" in err


def test_a_client_that_never_finishes_its_request_is_disconnected_after_request_timeout(mongo_uri, names):
    with served(mongo_uri, names.database, request_timeout=1) as (listen, _process):
        host, _, port = listen.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=30) as slow:
            slow.sendall(b"GET /api/logs HTTP/1.1\r\nHost: x\r\n")  # headers never end: a slowloris client
            # werkzeug's dev server waits forever (this recv would time out); waitress closes the connection.
            assert slow.recv(1024) == b""


def test_server_bounds_come_from_config_and_bad_ones_name_their_keys():
    base = {"mongo": {"uri": "mongodb://127.0.0.1/db"}}
    cfg = parse_config({**base, "webui": {"auth": "none", "threads": 4, "request_timeout": "2m"}}, {})
    assert (cfg.webui.threads, cfg.webui.max_streams, cfg.webui.request_timeout, cfg.webui.connection_limit) == (
        4, 2, 120.0, 100)
    with pytest.raises(ConfigError) as info:
        parse_config({**base, "webui": {"auth": "none", "threads": 0, "request_timeout": "0s",
                                        "connection_limit": "many"}}, {})
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "webui.connection_limit", "webui.request_timeout", "webui.threads"]
    with pytest.raises(ConfigError) as info:
        parse_config({**base, "webui": {"auth": "none", "threads": 4, "max_streams": 4}}, {})
    assert [p.split(":")[0] for p in info.value.problems] == ["webui.max_streams"]
