"""Fixtures every suite shares: real services, per-test names, config files.

Services, first match wins: ones already running (OPSLOG_TEST_AMQP_URL,
OPSLOG_TEST_MONGO_URI); containers, when a Docker engine answers; otherwise the
local programs of common.localservices, started once per session under its tmp dir.
Tests that stop or kill a service ask for `private_rabbit` / `private_mongo`
instead, so an outage never leaks into another test.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pymongo
import pytest
import yaml
from pymongo.database import Database

from common.config import load_config
from common.localservices import MongoServer, RabbitMQNode, free_port
from consumer.store import Store
from tests.helpers import REPO_ROOT, delete_amqp_objects

RABBITMQ_IMAGE = "rabbitmq:3.13-alpine"
MONGO_IMAGE = "mongo:7"


@functools.cache
def _docker_available() -> bool:
    """True when a Docker engine answers a ping (checked once per session)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    import docker

    try:
        client = docker.from_env(timeout=3)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:  # any failure to answer means "no usable engine"
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def amqp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a RabbitMQ broker the whole session shares (per-test names keep tests apart)."""
    if url := os.environ.get("OPSLOG_TEST_AMQP_URL"):
        yield url
    elif _docker_available():
        from testcontainers.community.rabbitmq import RabbitMqContainer

        with RabbitMqContainer(RABBITMQ_IMAGE) as rabbit:
            user, password = quote(rabbit.username, safe=""), quote(rabbit.password, safe="")
            host, port = rabbit.get_container_host_ip(), rabbit.get_exposed_port(rabbit.port)
            yield f"amqp://{user}:{password}@{host}:{port}/{quote(rabbit.vhost, safe='')}"
    else:
        with RabbitMQNode(tmp_path_factory.mktemp("rabbitmq")) as node:
            yield node.url


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI (no database) of a MongoDB-compatible server the whole session shares."""
    if uri := os.environ.get("OPSLOG_TEST_MONGO_URI"):
        yield uri
    elif _docker_available():
        from testcontainers.community.mongodb import MongoDbContainer

        with MongoDbContainer(MONGO_IMAGE) as mongo:
            yield mongo.get_connection_url()
    else:
        with MongoServer(tmp_path_factory.mktemp("mongo")) as server:
            yield server.uri


def with_database(uri: str, database: str) -> str:
    """`uri` naming `database` in its path, unless it already names one.

    With credentials, the user lives in the database the path named before (or
    admin), so authSource is pinned to it: a new path would otherwise move it."""
    parts = urlsplit(uri)
    current = parts.path.strip("/")
    if current:
        return uri
    query = parse_qsl(parts.query)
    if "@" in parts.netloc and not any(key.lower() == "authsource" for key, _ in query):
        query.append(("authSource", "admin"))
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", urlencode(query), parts.fragment))


@dataclass(frozen=True)
class Names:
    """Broker and database names that belong to one test only."""

    exchange: str
    queue: str
    dead_letter_queue: str
    database: str


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Iterator[Names]:
    """Unique names; what the test created under them on the session's shared
    services is deleted afterwards, so a long-lived broker or database stays clean."""
    tag = uuid.uuid4().hex[:10]
    test_names = Names(exchange=f"opslog.test-{tag}", queue=f"opslog.test-{tag}.records",
                       dead_letter_queue=f"opslog.test-{tag}.dead", database=f"opslog_test_{tag}")
    yield test_names
    if "amqp_url" in request.fixturenames:
        delete_amqp_objects(request.getfixturevalue("amqp_url"),
                            queues=(test_names.queue, test_names.dead_letter_queue),
                            exchanges=(test_names.exchange,))
    if "mongo_uri" in request.fixturenames:
        with pymongo.MongoClient(request.getfixturevalue("mongo_uri"), serverSelectionTimeoutMS=5000) as client:
            client.drop_database(test_names.database)


@pytest.fixture
def mongo_db(mongo_uri: str, names: Names) -> Iterator[Database[dict[str, Any]]]:
    """The test's own database on the shared server; `names` drops it after the test."""
    with pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        yield client[names.database]


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _given(sections: Mapping[str, Any], section: str, key: str) -> Any:
    """sections[section][key] if the test gave it (tests of bad configs may give odd shapes)."""
    value = sections.get(section)
    return value.get(key) if isinstance(value, Mapping) else None


def _plain(value: Any) -> Any:
    """YAML-safe copy: paths become strings, tuples lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@pytest.fixture
def write_config(request: pytest.FixtureRequest, names: Names) -> Callable[..., Path]:
    """`write_config(directory, **sections) -> Path` of `directory/opslog.yaml`.

    Defaults point at the shared services and the test's `names`; each keyword is
    a top-level section deep-merged over them (lists are replaced, not merged).
    A shared service starts only when the config needs it: passing
    `amqp={"url": private_rabbit.url}` never starts the session broker. A
    `mongo.uri` without a database gets `names.database`.
    """

    def write(directory: str | Path, **sections: Any) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        amqp_url = _given(sections, "amqp", "url") or request.getfixturevalue("amqp_url")
        mongo_uri = _given(sections, "mongo", "uri") or request.getfixturevalue("mongo_uri")
        defaults = {
            "amqp": {"url": amqp_url, "exchange": names.exchange, "queue": names.queue,
                     "dead_letter_queue": names.dead_letter_queue},
            "mongo": {"uri": mongo_uri},
            "shipper": {"host": "test-host", "state_dir": directory / "shipper-state", "inputs": []},
            "consumer": {},
            "webui": {"listen": f"127.0.0.1:{free_port()}", "auth": "none"},
        }
        config = _deep_merge(defaults, sections)
        if isinstance(config["mongo"], Mapping) and isinstance(config["mongo"].get("uri"), str):
            config["mongo"] = {**config["mongo"], "uri": with_database(config["mongo"]["uri"], names.database)}
        path = directory / "opslog.yaml"
        path.write_text(yaml.safe_dump(_plain(config), sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def open_store(tmp_path: Path, write_config: Callable[..., Path]) -> Iterator[Callable[..., Store]]:
    """`open_store(**mongo_keys)`: a Store on the test's database, closed afterwards."""
    stores: list[Store] = []

    def make(**mongo: Any) -> Store:
        config = load_config(str(write_config(tmp_path / f"store-{len(stores)}", mongo=mongo)))
        stores.append(Store(config.mongo))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def private_rabbit(tmp_path: Path) -> Iterator[RabbitMQNode]:
    """A broker of the test's own, free to be stopped and restarted."""
    with RabbitMQNode(tmp_path / "private-rabbitmq") as node:
        yield node


@pytest.fixture
def private_mongo(tmp_path: Path) -> Iterator[MongoServer]:
    """A database server of the test's own, free to be stopped, killed and restarted."""
    with MongoServer(tmp_path / "private-mongo") as server:
        yield server


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """`test-output/<test name>/` in the repo: screenshots and other artefacts a
    person looks at after the run, emptied at the start of each run of the test."""
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = REPO_ROOT / "test-output" / safe_name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
