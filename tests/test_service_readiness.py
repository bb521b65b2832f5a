"""A local service is waited for as long as it works, and given up on with a reason when it does not.

SecantusDB reads the key of every document when it opens a store, so its start
time grows with the records it holds (a million small ones cost it about 3.5 s
of CPU; the bench's million log records took 10.5 s on a quiet machine); a
machine busy with other work multiplies that. `CpuStarvation` reproduces the
busy machine on demand: it holds the server to a small share of one CPU by
stopping and continuing it in turn, as `cpulimit` does.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import TracebackType

import pymongo
import pytest

from common.localservices import MongoServer, RabbitMQNode, ServiceError
from common.localservices.readiness import activity

MILLION = 1_000_000
SEED_BATCH = 100_000
SEED_VERSION = 1  # bump when seed_records changes, to drop cached stores


class CpuStarvation:
    """While active, holds the process group `pid_of()` names to `share` of one CPU (as
    measured on its leader), whatever else the machine does, by stopping it whenever it is
    ahead of that budget (as `cpulimit` does). With share 0 it is stopped for good as soon
    as it appears."""

    def __init__(self, pid_of: Callable[[], int | None], share: float):
        self.pid_of, self.share = pid_of, share
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pid: int | None = None

    def __enter__(self) -> CpuStarvation:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        if self._pid is not None:
            try:
                os.killpg(self._pid, sig)  # the services lead their own group: a RabbitMQ node is several processes
            except ProcessLookupError:
                pass

    def _run(self) -> None:
        while (pid := self.pid_of()) is None:
            if self._done.wait(0.002):
                return
        self._pid, began = pid, time.monotonic()
        if self.share == 0:
            self._signal(signal.SIGSTOP)  # once: whoever stops it may continue it to deliver SIGTERM
            return
        while not self._done.is_set():
            used = activity(pid, []).cpu_seconds()
            allowed = self.share * (time.monotonic() - began)
            self._signal(signal.SIGSTOP if used >= allowed else signal.SIGCONT)
            self._done.wait(0.05)


def seed_records(base_dir: Path, count: int) -> None:
    """`count` small documents written by a real server, in large unordered batches.

    Seeded with the oplog off (`--standalone`): it halves the insert cost, and the open
    time being tested comes from the documents, which are the same either way."""
    with MongoServer(base_dir, extra_args=["--standalone"]) as server, \
            pymongo.MongoClient(server.uri, directConnection=True) as client:
        logs = client.opslog.logs
        for start in range(0, count, SEED_BATCH):
            logs.insert_many([{"_id": n} for n in range(start, min(count, start + SEED_BATCH))], ordered=False)


@pytest.fixture(scope="session")
def million_record_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped server's directory holding MILLION records, to be copied, never opened in place.

    Seeding costs one to two minutes (a few thousand inserts a second under load), so it is
    kept in pytest's cache under the SecantusDB version and paid once per machine;
    `pytest --cache-clear` seeds again."""
    key = f"secantusdb-{metadata.version('secantusdb')}-{MILLION}-records-v{SEED_VERSION}"
    if getattr(request.config, "cache", None) is None:  # -p no:cacheprovider
        store = tmp_path_factory.mktemp("big-store") / key
        seed_records(store, MILLION)
        return store
    cache = request.config.cache.mkdir("opslog-big-store")
    store = cache / key
    if not store.exists():
        partial = Path(tempfile.mkdtemp(prefix=f"{key}.partial-", dir=cache))
        seed_records(partial, MILLION)
        try:
            partial.rename(store)  # whole or not at all, even with several workers seeding
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
    return store


@pytest.mark.slow
def test_mongo_server_restarts_on_a_million_record_store_on_a_busy_machine(
        million_record_store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "mongo"
    shutil.copytree(million_record_store, store, ignore=shutil.ignore_patterns("secantusd.log"))
    server = MongoServer(store)
    caplog.set_level(logging.INFO, logger="common.localservices")
    # The open costs about 3.5 s of CPU here; at 8% of a CPU it lasts over 40 s, like the
    # bench's web stage on a loaded machine. The server never stops working meanwhile.
    with CpuStarvation(lambda: server.pid, share=0.08):
        server.start()
    try:
        with pymongo.MongoClient(server.uri, directConnection=True) as client:
            # Counting would walk the million again; the first and last records tell the same here.
            assert client.opslog.logs.find_one({"_id": 0}) == {"_id": 0}
            assert client.opslog.logs.find_one({"_id": MILLION - 1}) == {"_id": MILLION - 1}
        assert any("still waiting for the MongoDB-compatible server" in r.getMessage() for r in caplog.records), \
            "a long start says what it waits for"
        print(f"restart on {MILLION} records, 8% of a CPU: {server.last_start_seconds:.1f}s")
    finally:
        server.stop()


@pytest.mark.parametrize("service", [MongoServer, RabbitMQNode], ids=["mongo", "rabbitmq"])
def test_a_service_that_shows_no_progress_is_given_up_with_what_to_do(tmp_path: Path, service) -> None:
    server = service(tmp_path / "service", stall_timeout=2)
    with CpuStarvation(lambda: server.pid, share=0), pytest.raises(ServiceError) as failure:
        server.start()
    message = str(failure.value)
    assert "no progress for" in message
    assert str(server.log_path) in message, "says where to look"
    assert "--stall-timeout" in message, "says how to allow longer"
    assert server.pid is None
