"""The local service launchers that `opslog up` and the test suite rely on."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pika
import pymongo
import pytest

from common.localservices import MongoServer, RabbitMQNode, ServiceError, ServiceNotInstalled, free_port, rabbitmq
from common.localservices.mongo_ping import ping
from tests.helpers import queue_depth


def processes_with_env(name: str, value: str) -> list[int]:
    """Live pids whose environment has name=value. Every process of a private
    node inherits its unique ERL_EPMD_PORT, including the ones that setsid()."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue  # gone meanwhile, or a zombie
    return found


def live_group_members(pgid: int) -> list[int]:
    """Pids of group `pgid` that are not zombies (pid 1 may never reap those here)."""
    members = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def assert_node_gone(node: RabbitMQNode, pgid: int) -> None:
    assert processes_with_env("ERL_EPMD_PORT", str(node.epmd_port)) == []
    assert live_group_members(pgid) == []
    assert not port_open(node.port)
    assert not port_open(node.epmd_port)


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_rabbitmq_node_keeps_persistent_messages_across_restart(tmp_path: Path) -> None:
    node = RabbitMQNode(tmp_path / "rabbit")
    node.stop()  # before any start: nothing to do
    node.start()
    assert node.pid is not None and node.last_start_seconds is not None
    connection = pika.BlockingConnection(pika.URLParameters(node.url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("durable.q", durable=True)
    channel.basic_publish("", "durable.q", b"survives a restart",
                          properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))
    connection.close()

    pgid = node.pid
    assert len(processes_with_env("ERL_EPMD_PORT", str(node.epmd_port))) >= 3  # epmd, script, VM...
    node.stop()
    assert node.pid is None
    assert_node_gone(node, pgid)

    node.start()
    try:
        assert queue_depth(node.url, "durable.q") == 1
        connection = pika.BlockingConnection(pika.URLParameters(node.url))
        _, _, body = connection.channel().basic_get("durable.q", auto_ack=True)
        connection.close()
        assert body == b"survives a restart"
        pgid = node.pid
    finally:
        node.stop()
    assert_node_gone(node, pgid)
    node.stop()  # idempotent


def test_ctl_runs_rabbitmqctl_against_the_node_and_raises_on_failure(tmp_path: Path) -> None:
    with RabbitMQNode(tmp_path / "rabbit") as node:
        connection = pika.BlockingConnection(pika.URLParameters(node.url))
        channel = connection.channel()
        channel.queue_declare("held.q")
        channel.basic_publish("", "held.q", b"delivered, not acked yet")
        method, _, _ = channel.basic_get("held.q", auto_ack=False)
        assert method is not None
        # AMQP reports ready messages only; rabbitmqctl sees the unacked one too.
        out = node.ctl("-q", "list_queues", "name", "messages_unacknowledged")
        rows = dict(line.split() for line in out.splitlines() if len(line.split()) == 2)
        assert rows["held.q"] == "1"
        connection.close()
        with pytest.raises(ServiceError, match=f"no_such_command on {node.nodename} exited with"):
            node.ctl("no_such_command")


def test_services_refuse_a_port_another_server_listens_on(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = RabbitMQNode(tmp_path / "rabbit", port=port)
        with pytest.raises(ServiceError, match=f"port {port} .* already in use"):
            node.start()
        server = MongoServer(tmp_path / "mongo", port=port)
        with pytest.raises(ServiceError, match=f"port {port} .* already in use"):
            server.start()
    assert node.pid is None and server.pid is None


def test_rabbitmq_node_that_fails_to_boot_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    base = tmp_path / "rabbit"
    base.mkdir()
    (base / "rabbitmq.conf").write_text("no_such_setting = 1\n")
    node = RabbitMQNode(base)
    with pytest.raises(ServiceError, match="exited with status"):
        node.start()
    assert node.pid is None
    assert processes_with_env("ERL_EPMD_PORT", str(node.epmd_port)) == []


def test_mongo_server_keeps_data_across_restart_and_kill(tmp_path: Path) -> None:
    server = MongoServer(tmp_path / "mongo")
    server.stop()  # before any start: nothing to do
    with server:
        with pymongo.MongoClient(server.uri) as client:
            client.db.docs.insert_one({"_id": "before-stop"})
    assert server.pid is None
    assert not port_open(server.port)

    server.start()
    try:
        with pymongo.MongoClient(server.uri) as client:
            assert client.db.docs.find_one({"_id": "before-stop"}) is not None
            # Journaled: a w:1 write acknowledged just before SIGKILL may be lost (as with mongod).
            docs = client.db.get_collection("docs", write_concern=pymongo.WriteConcern(j=True))
            docs.insert_one({"_id": "before-kill"})
        pid = server.pid
        server.kill()
        assert server.pid is None
        assert live_group_members(pid) == []

        server.start()
        with pymongo.MongoClient(server.uri) as client:
            assert sorted(d["_id"] for d in client.db.docs.find()) == ["before-kill", "before-stop"]
    finally:
        server.stop()
    server.stop()  # idempotent
    server.kill()  # likewise


def test_in_memory_mongo_server_cleans_up_after_itself() -> None:
    with MongoServer(None, in_memory=True) as server:
        base_dir = server.base_dir
        assert base_dir is not None and base_dir.is_dir()
        with pymongo.MongoClient(server.uri) as client:
            assert client.admin.command("ping")["ok"] == 1
    assert not base_dir.exists()


def test_missing_rabbitmq_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rabbitmq, "RABBITMQ_BIN_DIR", tmp_path / "nowhere")
    node = RabbitMQNode(tmp_path / "rabbit")
    with pytest.raises(ServiceNotInstalled, match="apt-get install rabbitmq-server"):
        node.start()
    assert node.pid is None


def test_missing_secantusdb_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    server = MongoServer(tmp_path / "mongo")
    with pytest.raises(ServiceNotInstalled, match=r"pip install secantusdb==0\.7\.0b3"):
        server.start()
    assert server.pid is None


def test_mongo_readiness_ping_is_false_for_a_server_that_speaks_something_else() -> None:
    """The driver-free probe must not call a port ready because something listens on it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert not ping("127.0.0.1", port)  # accepts, never answers
    assert not ping("127.0.0.1", port)  # nothing listens
    with MongoServer(None, in_memory=True) as db:
        assert ping("127.0.0.1", db.port)
