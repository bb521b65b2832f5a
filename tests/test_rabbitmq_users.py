"""The broker users of deploy/rabbitmq/definitions.json on a private node: a shipper's
credentials publish records and nothing else (no reading, deleting or purging a queue, no
forged dead letters), a consumer's read its queue and dead-letter; and a real shipper and
consumer run with them, although neither may declare the topology."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from common.localservices import RabbitMQNode
from tests.consumer_support import dead_letters, wait_attached
from tests.helpers import REPO_ROOT, run_opslog, stop, wait_until

DEFINITIONS = REPO_ROOT / "deploy" / "rabbitmq" / "definitions.json"
VHOST = "opslog"
PASSWORDS = {"opslog-shipper": "shipper-secret", "opslog-consumer": "consumer-secret"}


@pytest.fixture
def broker(private_rabbit: RabbitMQNode, tmp_path: Path) -> Iterator[RabbitMQNode]:
    """The private node with the definitions imported, the users given passwords and the test's
    own eyes (guest) allowed in: one import, as each rabbitmqctl call costs seconds."""
    private_rabbit.ctl("import_definitions", str(definitions_with_passwords(tmp_path)))
    wait_until(lambda: exists(private_rabbit, "opslog.dead"), timeout=30, message="definitions imported")
    yield private_rabbit


def definitions_with_passwords(directory: Path) -> Path:
    """deploy/rabbitmq/definitions.json with PASSWORDS set and guest allowed into the vhost (a
    copy in `directory`): importing it is what an operator does in three steps."""
    definitions = json.loads(DEFINITIONS.read_text())
    for user in definitions["users"]:
        user["password_hash"] = password_hash(PASSWORDS[user["name"]])
    definitions["permissions"].append({"user": "guest", "vhost": VHOST, "configure": ".*", "write": ".*",
                                       "read": ".*"})
    path = directory / "definitions.json"
    path.write_text(json.dumps(definitions))
    return path


def password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def exists(node: RabbitMQNode, queue: str) -> bool:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url(node, "guest")))
    except pika.exceptions.AMQPError:  # the vhost, or guest's permission on it, is not imported yet
        return False
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def url(node: RabbitMQNode, user: str) -> str:
    password = PASSWORDS.get(user, "guest")
    return f"amqp://{user}:{password}@127.0.0.1:{node.port}/{VHOST}"


def refused(node: RabbitMQNode, user: str, action: Callable[[pika.adapters.blocking_connection.BlockingChannel], object]
            ) -> bool:
    """True if the broker answers `action` on `user`'s channel with 403 ACCESS_REFUSED."""
    connection = pika.BlockingConnection(pika.URLParameters(url(node, user)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            action(channel)
        except pika.exceptions.ChannelClosedByBroker as exc:
            return exc.reply_code == 403
        return False
    finally:
        if connection.is_open:
            connection.close()


def publish(exchange: str, routing_key: str = "") -> Callable[..., object]:
    return lambda ch: ch.basic_publish(exchange, routing_key, b'{"v": 2, "groups": []}', mandatory=True)


def test_a_shippers_credentials_publish_records_and_nothing_else(broker):
    shipper = "opslog-shipper"
    assert not refused(broker, shipper, publish("opslog"))
    assert refused(broker, shipper, lambda ch: ch.basic_get("opslog.records")), "no reading others' records"
    assert refused(broker, shipper, lambda ch: ch.basic_consume("opslog.records", lambda *_: None))
    assert refused(broker, shipper, lambda ch: ch.queue_delete("opslog.records")), "no deleting the queue"
    assert refused(broker, shipper, lambda ch: ch.queue_purge("opslog.records"))
    assert refused(broker, shipper, lambda ch: ch.queue_declare("opslog.records", arguments={"x-queue-type": "quorum"}))
    assert refused(broker, shipper, publish("opslog.dlx")), "no forged dead letters"
    assert refused(broker, shipper, publish("", "opslog.dead")), "nor through the default exchange"
    assert refused(broker, shipper, publish("opslog.requeue")), "nor as a consumer's suspect"
    consumer = "opslog-consumer"
    assert refused(broker, consumer, publish("opslog")), "a consumer forges no records either"
    assert not refused(broker, consumer, publish("opslog.requeue")), "but sends a redelivered message round again"
    assert refused(broker, consumer, lambda ch: ch.queue_delete("opslog.records"))
    assert refused(broker, consumer, lambda ch: ch.basic_get("opslog.dead"))


def test_a_shipper_and_a_consumer_run_with_the_restricted_users(tmp_path: Path, broker, write_config, mongo_db):
    amqp = {"exchange": "opslog", "queue": "opslog.records", "dead_letter_queue": "opslog.dead",
            "queue_type": "quorum"}
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("".join(f"line {n}\n" for n in range(500)))
    consumer = run_opslog("consume", config=write_config(
        tmp_path / "consumer", amqp=amqp | {"url": url(broker, "opslog-consumer")},
        consumer={"batch_max_wait": "0.2s"}))
    shipper = run_opslog("ship", config=write_config(
        tmp_path / "shipper", amqp=amqp | {"url": url(broker, "opslog-shipper")},
        shipper={"inputs": [{"paths": [str(logs / "*.log")], "app": "app", "format": "plain"}]}))
    try:
        wait_attached(url(broker, "guest"), "opslog.records")
        wait_until(lambda: mongo_db.logs.count_documents({}) == 500, timeout=30, message="500 lines stored")
        # Garbage published with the shipper's credentials: the consumer may dead-letter it.
        connection = pika.BlockingConnection(pika.URLParameters(url(broker, "opslog-shipper")))
        connection.channel().basic_publish("opslog", "", b"not a batch")
        connection.close()
        dead = wait_until(lambda: dead_letters(url(broker, "guest"), "opslog.dead"), timeout=30,
                          message="garbage dead-lettered")
        assert [body for body, _ in dead] == [b"not a batch"]
    finally:
        assert stop(shipper) == 0, shipper.output()
        assert stop(consumer) == 0, consumer.output()
    assert mongo_db.logs.count_documents({}) == 500


def test_a_consumer_without_configure_permission_waits_for_the_topology_to_be_imported(tmp_path: Path,
                                                                                      private_rabbit, write_config,
                                                                                      mongo_db):
    """Started before the operator imported the queues, it says what is missing and retries, as when the
    broker is down; it neither gives up nor needs a permission to create them itself."""
    full = definitions_with_passwords(tmp_path)
    early = json.loads(full.read_text())
    early["queues"], early["bindings"] = [], []
    (tmp_path / "early.json").write_text(json.dumps(early))
    private_rabbit.ctl("import_definitions", str(tmp_path / "early.json"))
    consumer = run_opslog("consume", config=write_config(
        tmp_path / "consumer", amqp={"url": url(private_rabbit, "opslog-consumer"), "exchange": "opslog",
                                     "queue": "opslog.records", "dead_letter_queue": "opslog.dead"},
        consumer={"retry_max_wait": "1s"}))
    try:
        wait_until(lambda: "queue opslog.dead does not exist and this user may not declare it" in consumer.output(),
                   timeout=30, message="the consumer says what is missing")
        assert consumer.poll() is None, consumer.output()
        private_rabbit.ctl("import_definitions", str(full))
        wait_attached(url(private_rabbit, "guest"), "opslog.records")
    finally:
        assert stop(consumer) == 0, consumer.output()
