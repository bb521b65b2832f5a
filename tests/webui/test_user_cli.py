"""`opslog user add|passwd|role|remove|list -c FILE` as real processes against SecantusDB, and the web UI
signing those users in: a new password or a removal ends their sessions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from webui_data import ADMIN_TOKEN, SECRET_KEY, sign_in
from werkzeug.security import check_password_hash

from common.config import load_config
from tests.helpers import REPO_ROOT
from webui import create_app


def opslog_user(config: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """`opslog user ARGS -c CONFIG` to its end; `password` goes to its standard input."""
    argv = [sys.executable, "-m", "common.cli", "user", *args, "-c", str(config)]
    if password is not None:
        argv.append("--password-stdin")
    return subprocess.run(argv, cwd=REPO_ROOT, input=(password + "\n") if password is not None else "",
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def config_file(tmp_path, write_config, password_hash) -> Path:
    return write_config(tmp_path, webui={"auth": "password", "users": {"admin": password_hash},
                                         "secret_key": SECRET_KEY,
                                         "api_tokens": [{"token": ADMIN_TOKEN, "role": "admin"}]})


@pytest.fixture
def web(config_file, db):
    app = create_app(load_config(str(config_file)), db=db)
    app.testing = True
    return app


def role_of(client) -> int | str:
    response = client.get("/api/me")
    return orjson.loads(response.data)["role"] if response.status_code == 200 else response.status_code


def test_a_user_added_on_the_command_line_signs_in_with_its_role(config_file, web, db):
    added = opslog_user(config_file, "add", "alice", "--role", "editor", password="alice's first password")
    assert added.returncode == 0, added.stderr
    doc = db["users"].find_one({"_id": "alice"})
    assert doc["role"] == "editor" and doc["created"] and doc["updated"]
    assert doc["password_hash"].startswith("scrypt:")  # as `opslog hash-password` makes it
    assert check_password_hash(doc["password_hash"], "alice's first password")

    alice = web.test_client()
    assert sign_in(alice, "alice", "wrong").status_code == 401
    assert sign_in(alice, "alice", "alice's first password").status_code == 302
    assert role_of(alice) == "editor"

    listed = opslog_user(config_file, "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["admin\tadmin\tconfig", "alice\teditor\tdatabase"]
    admin_api = web.test_client()
    admin_api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    users = orjson.loads(admin_api.get("/api/users").data)["users"]
    assert [(u["name"], u["role"], u["source"]) for u in users] == [("admin", "admin", "config"),
                                                                  ("alice", "editor", "database")]

    assert opslog_user(config_file, "role", "alice", "viewer").returncode == 0
    assert role_of(alice) == "viewer", "a new role holds at the session's next request"


def test_a_new_password_ends_the_sessions_and_only_the_new_one_signs_in(config_file, web):
    assert opslog_user(config_file, "add", "bob", "--role", "viewer", password="bob old password").returncode == 0
    bob = web.test_client()
    assert sign_in(bob, "bob", "bob old password").status_code == 302 and role_of(bob) == "viewer"
    changed = opslog_user(config_file, "passwd", "bob", password="bob new password")
    assert changed.returncode == 0, changed.stderr
    assert role_of(bob) == 401
    assert sign_in(web.test_client(), "bob", "bob old password").status_code == 401
    assert sign_in(web.test_client(), "bob", "bob new password").status_code == 302


def test_a_removed_users_session_is_refused_and_it_cannot_sign_in(config_file, web, db):
    assert opslog_user(config_file, "add", "carol", "--role", "admin", password="carol password").returncode == 0
    carol = web.test_client()
    assert sign_in(carol, "carol", "carol password").status_code == 302
    assert carol.get("/").status_code == 200
    removed = opslog_user(config_file, "remove", "carol")
    assert removed.returncode == 0, removed.stderr
    assert db["users"].count_documents({"_id": "carol"}) == 0
    assert role_of(carol) == 401
    page = carol.get("/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert sign_in(web.test_client(), "carol", "carol password").status_code == 401


def test_refusals_exit_1_and_say_why(config_file):
    assert opslog_user(config_file, "add", "dave", "--role", "editor", password="dave password").returncode == 0
    again = opslog_user(config_file, "add", "dave", "--role", "viewer", password="other password")
    assert again.returncode == 1 and "exists already" in again.stderr
    shadow = opslog_user(config_file, "add", "admin", "--role", "viewer", password="admin password")
    assert shadow.returncode == 1 and "webui.users" in shadow.stderr
    for args in (("passwd", "nobody"), ("remove", "nobody"), ("role", "nobody", "editor")):
        refused = opslog_user(config_file, *args, password="x password" if args[0] == "passwd" else None)
        assert refused.returncode == 1 and "no user 'nobody'" in refused.stderr, (args, refused.stderr)
    empty = opslog_user(config_file, "add", "erin", "--role", "viewer", password="")
    assert empty.returncode == 1 and "empty" in empty.stderr
    bad_role = opslog_user(config_file, "add", "erin", "--role", "root", password="erin password")
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    bad_name = opslog_user(config_file, "add", "bad name!", "--role", "viewer", password="erin password")
    assert bad_name.returncode == 2 and "a user name is" in bad_name.stderr


def test_an_unreachable_database_is_an_error_message_and_exit_1(tmp_path, write_config, password_hash):
    from common.localservices.ports import free_port
    config = write_config(tmp_path, mongo={"uri": f"mongodb://127.0.0.1:{free_port()}/nowhere"},
                          amqp={"url": "amqp://guest:guest@127.0.0.1:1/%2F"},
                          webui={"auth": "password", "users": {"admin": password_hash}})
    for args, password in ((("list",), None), (("add", "zoe", "--role", "viewer"), "zoe password")):
        failed = opslog_user(config, *args, password=password)
        assert failed.returncode == 1, failed.stderr
        assert "database unavailable" in failed.stderr and "Traceback" not in failed.stderr


def test_a_script_pipes_the_password_and_a_new_user_is_a_viewer_by_default(config_file, web, db):
    argv = [sys.executable, "-m", "common.cli", "user", "add", "carol", "-c", str(config_file)]
    added = subprocess.run(argv, cwd=REPO_ROOT, input="carol's password\n", capture_output=True, text=True,
                           timeout=60)
    assert added.returncode == 0, added.stderr
    assert db["users"].find_one({"_id": "carol"})["role"] == "viewer"
    carol = web.test_client()
    assert sign_in(carol, "carol", "carol's password").status_code == 302
    assert role_of(carol) == "viewer"
