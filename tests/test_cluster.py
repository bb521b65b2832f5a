"""A 3-node RabbitMQ cluster on this machine: a broker node dies under load and nothing is lost or doubled.

The cluster is three private nodes (common.localservices.RabbitMQCluster) with the
topology of deploy/rabbitmq/definitions.json: a quorum queue replicated on all
three. Two shippers (two "hosts") and two consumers run as real `opslog`
processes with all three broker URLs, logged in as the definitions' restricted
users (no permission to declare: each connection checks that the objects exist).
A node that clients are connected to is killed with SIGKILL mid-stream and
started again later; the clients must move to the surviving nodes by
themselves, and every line must be stored once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from common.localservices import RabbitMQCluster, RabbitMQNode
from tests.helpers import OpslogProcess, run_opslog, stop, wait_until
from tests.test_pipeline import assert_stored_exactly_once
from tests.test_rabbitmq_users import PASSWORDS, definitions_with_passwords
from tests.test_services import processes_with_env

VHOST = "opslog"
_CONNECTED = re.compile(r"connected to broker 127\.0\.0\.1:(\d+)")


@pytest.fixture
def rabbit_cluster(tmp_path: Path) -> Iterator[RabbitMQCluster]:
    """Three joined nodes with deploy/rabbitmq/definitions.json imported, as the recipe sets one up."""
    with RabbitMQCluster(tmp_path / "rabbitmq-cluster", size=3) as cluster:
        seed = cluster.nodes[0]
        assert all(RabbitMQCluster.running_nodes(node) == {n.nodename for n in cluster.nodes}
                   for node in cluster.nodes), "joined with stop_app / join_cluster / start_app"
        seed.ctl("import_definitions", str(definitions_with_passwords(tmp_path)))  # with its users
        wait_until(lambda: len(quorum_queues(seed)) == 2, timeout=30, message="definitions imported")
        queues = quorum_queues(seed)
        assert {q["type"] for q in queues.values()} == {"quorum"}
        assert all(len(q["online"]) == 3 for q in queues.values()), "each queue replicated on all three nodes"
        yield cluster
    # Every process of the three nodes shares the cluster's epmd port in its environment.
    assert processes_with_env("ERL_EPMD_PORT", str(cluster.epmd_port)) == [], "the cluster left processes"


def quorum_queues(node: RabbitMQNode) -> dict[str, dict]:
    """The vhost's queues as `node` reports them: name -> {type, leader, members, online}."""
    try:
        rows = json.loads(node.ctl("list_queues", "-p", VHOST, "name", "type", "leader", "members", "online",
                                   "--formatter", "json"))
    except Exception:  # the vhost does not exist yet, or the node is busy: "not yet"
        return {}
    return {row["name"]: row for row in rows}


def amqp_as(cluster: RabbitMQCluster, user: str) -> dict:
    """The `amqp` config section of a client logging in as `user` of definitions.json, every node listed."""
    return {"url": [f"amqp://{user}:{PASSWORDS[user]}@127.0.0.1:{node.port}/{VHOST}" for node in cluster.nodes],
            "exchange": "opslog", "queue": "opslog.records", "dead_letter_queue": "opslog.dead",
            "queue_type": "quorum"}


def broker_port(proc: OpslogProcess) -> int | None:
    """The port of the broker `proc` connected to last, from its log."""
    ports = _CONNECTED.findall(proc.output())
    return int(ports[-1]) if ports else None


def append_lines(path: Path, stop_writing: threading.Event, per_second: int) -> None:
    """Append numbered lines at about `per_second` until told to stop."""
    n = 0
    with open(path, "a", encoding="utf-8") as fh:
        while not stop_writing.is_set():
            fh.writelines(f"{path.stem} line {i:07d} GET /api/orders/{i} 200\n" for i in range(n, n + 50))
            fh.flush()
            n += 50
            time.sleep(50 / per_second)


def clients_on(node: RabbitMQNode, clients: dict[str, OpslogProcess]) -> set[str]:
    return {name for name, proc in clients.items() if broker_port(proc) == node.port}


def kinds(names: set[str]) -> set[str]:
    """"ship-web-01" -> "ship", "consume-2" -> "consume"."""
    return {name.split("-")[0] for name in names}


def outage(cluster: RabbitMQCluster, clients: dict[str, OpslogProcess], db, wanted: set[str]) -> set[str]:
    """Kill the node that holds the most clients of the `wanted` kinds (the queue's leader when
    that ties) while records flow, see its clients move to the other two nodes and records keep
    arriving, then start it again. Returns the kinds of client that lost their broker."""
    leader = quorum_queues(cluster.nodes[0]).get("opslog.records", {}).get("leader")
    victim = max(cluster.nodes, key=lambda node: (len(kinds(clients_on(node, clients)) & wanted),
                                                  len(clients_on(node, clients)), node.nodename == leader))
    on_victim = clients_on(victim, clients)
    connects = {name: clients[name].output().count("connected to broker") for name in on_victim}
    survivors = [node for node in cluster.nodes if node is not victim]
    stored_before = db.logs.count_documents({})

    victim.kill()

    def moved_to_survivors() -> bool:
        return all(clients[name].output().count("connected to broker") > connects[name]
                   and broker_port(clients[name]) in {node.port for node in survivors} for name in on_victim)
    wait_until(moved_to_survivors, timeout=60, message=f"{sorted(on_victim)} reconnected to a surviving node")
    wait_until(lambda: db.logs.count_documents({}) >= stored_before + 2000, timeout=60,
               message="records keep flowing through the two surviving nodes")
    records = quorum_queues(survivors[0])["opslog.records"]
    assert victim.nodename not in records["online"] and len(records["online"]) == 2, records

    victim.start()
    cluster.wait_running()
    wait_until(lambda: len(quorum_queues(victim).get("opslog.records", {}).get("online", [])) == 3,
               timeout=60, message="the restarted node's replica back online")
    return kinds(on_victim)


@pytest.mark.slow
def test_a_broker_node_dies_under_load_and_every_line_is_stored_once(tmp_path, rabbit_cluster, write_config,
                                                                     mongo_uri, names):
    cluster = rabbit_cluster
    shipping, consuming = amqp_as(cluster, "opslog-shipper"), amqp_as(cluster, "opslog-consumer")
    hosts = {"web-01": tmp_path / "web-01", "web-02": tmp_path / "web-02"}
    files = []
    for host, directory in hosts.items():
        (directory / "logs").mkdir(parents=True)
        files.append(directory / "logs" / f"{host}.log")
    consumer_config = write_config(tmp_path / "consumers", amqp=consuming, consumer={"batch_max_records": 500,
                                                                                "retry_max_wait": "1s"})
    clients: dict[str, OpslogProcess] = {}
    stop_writing = threading.Event()
    writers = [threading.Thread(target=append_lines, args=(path, stop_writing, 600)) for path in files]
    db = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=20000)[names.database]
    try:
        for i in (1, 2):
            clients[f"consume-{i}"] = run_opslog("consume", config=consumer_config)
        for host, directory in hosts.items():
            config = write_config(directory, amqp=shipping, shipper={
                "host": host, "batch_max_records": 200,
                "inputs": [{"paths": [str(directory / "logs" / "*.log")], "app": "orders"}]})
            clients[f"ship-{host}"] = run_opslog("ship", config=config)
        wait_until(lambda: all(broker_port(p) for p in clients.values()), timeout=60,
                   message="every client connected")
        for writer in writers:
            writer.start()
        wait_until(lambda: db.logs.count_documents({}) >= 2000, timeout=60, message="records flowing")

        # A node holding clients of both kinds if there is one; else a second outage
        # takes a node holding the kind the first one missed.
        wanted = {"ship", "consume"}
        for _ in range(2):
            wanted -= outage(cluster, clients, db, wanted)
            if not wanted:
                break
        assert not wanted, f"no outage reached a {wanted} client"

        stop_writing.set()
        for writer in writers:
            writer.join()
        total = sum(path.read_bytes().count(b"\n") for path in files)
        wait_until(lambda: db.logs.count_documents({}) >= total, timeout=120,
                   message=f"all {total} lines stored")
        time.sleep(2)  # anything re-sent after a reconnect has arrived by now
        for name, proc in clients.items():
            assert proc.poll() is None, f"{name} kept running through the outage:\n{proc.output()[-3000:]}"
    finally:
        stop_writing.set()
        for writer in writers:
            if writer.is_alive():
                writer.join()
        codes = {name: stop(proc) for name, proc in clients.items()}
    assert codes == {name: 0 for name in clients}, codes
    assert_stored_exactly_once(db, files)
    assert sum(r["n"] for r in db.rollups.find()) == total, "volume rollups count every line once"
    db.client.close()
