"""`opslog up` (what `make run` starts): services, shipper, consumer and UI on one machine,
demo lines arriving within seconds, and Ctrl-C stopping all of it, services included."""

from __future__ import annotations

import logging
import re
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pymongo
import pytest
import yaml

from common.cli import main
from tests.helpers import run_opslog, stop, wait_until


@pytest.mark.slow
def test_up_shows_demo_lines_and_ctrl_c_stops_everything(tmp_path):
    data = tmp_path / "data"
    extra = tmp_path / "extra.log"
    extra.write_text("an extra file the user asked to tail\n")
    up = run_opslog("up", "-d", str(data), str(extra), config=None, log_dir=tmp_path)
    try:
        banner = wait_until(lambda: re.search(r"opslog is up: (http://\S+)/\n.*admin / (\S+)", up.output(), re.S),
                            timeout=90, message="the 'opslog is up' banner with the admin password")
        url, password = banner.group(1), banner.group(2)
        assert len(password) >= 12
        config = yaml.safe_load((data / "opslog.yaml").read_text())
        assert "admin" in config["webui"]["users"] and password not in (data / "opslog.yaml").read_text()

        with pymongo.MongoClient(config["mongo"]["uri"], serverSelectionTimeoutMS=5000) as client:
            logs = client.get_default_database().logs
            wait_until(lambda: logs.count_documents({"app": "demo"}) >= 3, timeout=60,
                       message="demo lines stored")
            wait_until(lambda: logs.count_documents({"app": "extra"}) == 1, timeout=30,
                       message="the extra path tailed")
            # the alert evaluator runs too: it takes the evaluation lease (rules made in the UI fire)
            wait_until(lambda: client.get_default_database().alert_lease.count_documents({}) == 1, timeout=60,
                       message="opslog alert holding its lease")

        # the web UI may still be starting when the demo lines are already stored
        wait_until(lambda: _answers(f"{url}/healthz"), timeout=30, message="the web UI answering /healthz")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{url}/api/logs", timeout=10)
        assert info.value.code == 401, "the UI started by `up` requires sign-in"
        info.value.close()

        services = _processes_mentioning(str(data))
        assert len(services) >= 2, "the RabbitMQ node and the database server run under the data dir"
        assert stop(up, signal.SIGINT, timeout=90) == 0, up.output()[-3000:]
        assert "opslog stopped." in up.output()
        assert _processes_mentioning(str(data)) == [], "Ctrl-C stops the services too"
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/healthz", timeout=3)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_up_with_a_config_tails_the_paths_given_too(tmp_path, write_config, mongo_db):
    """`opslog up -c FILE PATH`: the path is tailed as it is without -c, not silently ignored."""
    config = write_config(tmp_path)
    extra = tmp_path / "extra.log"
    extra.write_text("a file named on the command line next to a config\n")
    up = run_opslog("up", "-d", str(tmp_path / "data"), str(extra), config=config, log_dir=tmp_path)
    try:
        wait_until(lambda: mongo_db.logs.count_documents({"app": "extra"}) == 1, timeout=30,
                   message="the extra path tailed")
        assert stop(up, signal.SIGINT, timeout=60) == 0, up.output()[-3000:]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_a_missing_local_server_is_a_message_and_exit_1_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    config = tmp_path / "opslog.yaml"  # a broker of its own (never reached), the default database: started here
    config.write_text(yaml.safe_dump({"amqp": {"url": "amqp://guest:guest@127.0.0.1:1/%2F"}}))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    try:
        assert main(["up", "-d", str(tmp_path / "data"), "-c", str(config)]) == 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        root.handlers[:], root.level = root_handlers, root_level
    err = capsys.readouterr().err
    assert "pip install secantusdb" in err and "Traceback" not in err
