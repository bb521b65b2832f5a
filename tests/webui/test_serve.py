"""`serve(config)`: the UI as `opslog web` runs it, in its own process, stopped by SIGTERM."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import urllib.request

from helpers import REPO_ROOT, wait_until

from common.services import free_port

SCRIPT = """
import sys
from common.config import Config, MongoConfig, WebConfig
from common.logsetup import setup_logging
from webui import serve
setup_logging("info")
web = WebConfig(listen=sys.argv[2], auth="none", secret_key=sys.argv[3])
serve(Config(mongo=MongoConfig(uri=sys.argv[1]), webui=web))
"""


def _health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_serve_answers_on_its_address_and_stops_cleanly_on_sigterm(mongo_uri, names):
    listen = f"127.0.0.1:{free_port()}"
    uri = f"{mongo_uri.rstrip('/')}/{names.database}"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, uri, listen, secrets.token_hex(32)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _health(f"http://{listen}"), timeout=20) == {"status": "ok",
                                                                               "checks": {"database": True}}
        with urllib.request.urlopen(f"http://{listen}/api/logs", timeout=5) as response:
            assert json.loads(response.read()) == {"records": [], "next_cursor": None}
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "web UI stopped" in err
