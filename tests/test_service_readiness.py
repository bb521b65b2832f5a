"""A local service is waited for as long as it works, and given up on with a reason when it does not.

SecantusDB reads the key of every document when it opens a store, so its start
time grows with the records it holds (about 8 s per million on a quiet machine);
a machine busy with other work multiplies that. `CpuStarvation` reproduces the
busy machine on demand: it holds the server to a small share of one CPU by
stopping and continuing it in turn, as `cpulimit` does.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pymongo
import pytest

from common.services import MongoServer, ServiceError

MILLION = 1_000_000
SEED_BATCH = 100_000


class CpuStarvation:
    """While active, lets the process `pid_of()` names run only `share` of each `period`
    (share 0: stopped for good once it appears)."""

    def __init__(self, pid_of: Callable[[], int | None], share: float, period: float = 0.2):
        self.pid_of, self.share, self.period = pid_of, share, period
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._last: int | None = None

    def __enter__(self) -> CpuStarvation:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        if self._last is not None:
            try:
                os.kill(self._last, sig)
            except ProcessLookupError:
                pass

    def _run(self) -> None:
        while not self._done.is_set():
            pid = self.pid_of()
            if pid is None:
                time.sleep(0.002)
                continue
            self._last = pid
            self._signal(signal.SIGSTOP)
            if self.share == 0:
                self._done.wait()
                return
            self._done.wait(self.period * (1 - self.share))
            self._signal(signal.SIGCONT)
            self._done.wait(self.period * self.share)


def seed_records(base_dir: Path, count: int) -> None:
    """`count` small documents written by a real server, in large unordered batches.

    Seeded with the oplog off (`--standalone`): it halves the insert cost, and the open
    time being tested comes from the documents, which are the same either way."""
    with MongoServer(base_dir, extra_args=["--standalone"]) as server, \
            pymongo.MongoClient(server.uri, directConnection=True) as client:
        logs = client.opslog.logs
        for start in range(0, count, SEED_BATCH):
            logs.insert_many([{"_id": n} for n in range(start, min(count, start + SEED_BATCH))], ordered=False)


@pytest.mark.slow
def test_mongo_server_restarts_on_a_million_record_store_on_a_busy_machine(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "mongo"
    seed_records(store, MILLION)
    server = MongoServer(store)
    caplog.set_level(logging.INFO, logger="common.services")
    # An eighth of a CPU: the open that takes 8 s alone takes over a minute, like the
    # bench's web stage on a loaded machine. The server never stops working meanwhile.
    with CpuStarvation(lambda: server.pid, share=1 / 8):
        server.start()
    try:
        with pymongo.MongoClient(server.uri, directConnection=True) as client:
            assert client.opslog.logs.estimated_document_count() == MILLION
        assert any("still waiting for the MongoDB-compatible server" in r.getMessage() for r in caplog.records), \
            "a long start says what it waits for"
        print(f"restart on {MILLION} records, an eighth of a CPU: {server.last_start_seconds:.1f}s")
    finally:
        server.stop()


def test_mongo_server_that_shows_no_progress_is_given_up_with_what_to_do(tmp_path: Path) -> None:
    server = MongoServer(tmp_path / "mongo", stall_timeout=2)
    with CpuStarvation(lambda: server.pid, share=0), pytest.raises(ServiceError) as failure:
        server.start()
    message = str(failure.value)
    assert "no progress for" in message
    assert str(server.log_path) in message, "says where to look"
    assert "--stall-timeout" in message, "says how to allow longer"
    assert server.pid is None
