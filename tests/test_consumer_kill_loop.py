"""Consumers killed again and again (OOM kills, rolling deploys, a crash-looping host): healthy
records survive any number of deaths, and only a message that itself kills the consumer,
while processed alone, is parked, with its reason.

Real broker (its default delivery limit of 5), real database, real `opslog consume`
processes killed with SIGKILL and restarted at once."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymongo
import pytest

from tests.consumer_support import (
    assert_stored_exactly_once,
    bodies,
    dead_letters,
    make_records,
    publish,
    shippers,
    wait_attached,
    wait_counted,
)
from tests.crashing_consumer import CRASH_MARK
from tests.helpers import REPO_ROOT, queue_depth, run_opslog, stop, wait_until

ROUNDS = 8
OUTAGE = (3, 5)  # the database stops in the fourth round and is back for the sixth: about 5 s
PER_MESSAGE = 500


@pytest.mark.slow
def test_two_consumers_killed_eight_times_through_a_database_outage_store_every_record_and_park_nothing(
        tmp_path, write_config, amqp_url, private_mongo, names):
    # 40 messages: the two workers' prefetch windows (20), whose first batch (5000 records) takes
    # longer to store than a worker lives between kills.
    records, messages = shippers(hosts=4, per_host=5000, per_message=PER_MESSAGE)
    config = write_config(tmp_path, mongo={"uri": private_mongo.uri}, consumer={"retry_max_wait": "1s"})
    db = pymongo.MongoClient(private_mongo.uri, serverSelectionTimeoutMS=30000)[names.database]
    workers = [run_opslog("consume", config=config) for _ in range(2)]
    rng = random.Random(12)
    try:
        wait_attached(amqp_url, names.queue, count=2)
        publish(amqp_url, names.exchange, messages)
        for n in range(ROUNDS):
            if n == OUTAGE[1]:
                private_mongo.start()
            if n in range(*OUTAGE) and n != OUTAGE[0]:
                time.sleep(rng.uniform(2.0, 3.0))  # they wait for the database, holding nothing
            else:
                wait_attached(amqp_url, names.queue, count=2)  # each death then returns a window
                time.sleep(rng.uniform(0.2, 0.7))
            if n == OUTAGE[0]:
                private_mongo.stop()  # with batches in hand
                time.sleep(rng.uniform(0.5, 1.0))
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
            workers = [run_opslog("consume", config=config) for _ in range(2)]
        wait_attached(amqp_url, names.queue, count=2)  # up again, so they stop on SIGTERM

        def settled() -> bool:
            parked = queue_depth(amqp_url, names.dead_letter_queue) * PER_MESSAGE
            return db.logs.estimated_document_count() + parked >= len(records)
        wait_until(settled, timeout=120, interval=0.5, message="every record stored or parked")
        stored = db.logs.estimated_document_count()
        parked = queue_depth(amqp_url, names.dead_letter_queue)
        assert parked == 0, f"{stored} of {len(records)} records stored, {parked} healthy messages parked"
        wait_counted(db, len(records), timeout=60)
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=30, message="queue drained")
    finally:
        db.client.close()
        private_mongo.start()
        codes = [stop(worker, timeout=60) for worker in workers]
    assert codes == [0, 0], [w.output()[-3000:] for w in workers]
    with pymongo.MongoClient(private_mongo.uri) as client:
        assert_stored_exactly_once(client[names.database], records)
        assert list(client[names.database].attempts.find()) == [], "every attempt ended with its outcome"


def crashing_consumer(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`opslog consume` that dies by SIGKILL on CRASH_MARK (tests/crashing_consumer.py)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPSLOG_AMQP_URL", "OPSLOG_MONGO_URI")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    with open(log_path, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.crashing_consumer", "-c", str(config)],
                                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)


@contextmanager
def restarted_at_once(config: Path, log_path: Path) -> Iterator[list[int]]:
    """A crashing consumer restarted whenever it dies, as systemd's Restart=always would; yields
    the list of its exit codes so far; stopped with SIGTERM at the end."""
    state = {"proc": crashing_consumer(config, log_path)}
    deaths: list[int] = []
    done = threading.Event()

    def supervise() -> None:
        while not done.is_set():
            code = state["proc"].poll()
            if code is not None:
                deaths.append(code)
                state["proc"] = crashing_consumer(config, log_path)
            time.sleep(0.05)

    supervisor = threading.Thread(target=supervise, name="supervisor")
    supervisor.start()
    try:
        yield deaths
    finally:
        done.set()
        supervisor.join()
        assert stop(state["proc"], timeout=60) == 0, log_path.read_text(errors="replace")[-3000:]


def test_a_message_that_kills_the_consumer_is_parked_with_its_reason_and_its_neighbours_are_stored(
        tmp_path, write_config, amqp_url, mongo_db, names):
    healthy = make_records("web-01", 2000)
    poison = make_records("web-02", 3)
    poison[1] = dataclasses.replace(poison[1], message=f"web-02 {CRASH_MARK}")
    messages = bodies(healthy, 100)
    [poison_body] = bodies(poison, 3)
    config = write_config(tmp_path, consumer={"crash_limit": 2})
    with restarted_at_once(config, tmp_path / "consumer.log") as deaths:
        wait_attached(amqp_url, names.queue)
        publish(amqp_url, names.exchange, [*messages[:10], poison_body, *messages[10:]])  # one prefetch window

        def settled() -> bool:
            return (queue_depth(amqp_url, names.dead_letter_queue) >= 1
                    and mongo_db.logs.estimated_document_count() >= len(healthy))
        wait_until(settled, timeout=90, interval=0.5, message="the poison parked and its neighbours stored")
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=30, message="queue drained")
    assert deaths.count(-signal.SIGKILL) >= 3, "it died in a batch, then twice while processed alone"
    [(body, headers)] = dead_letters(amqp_url, names.dead_letter_queue)
    assert body == poison_body
    assert headers["x-opslog-reason"] == "crashed the consumer 2 times while processed alone"
    assert "x-first-death-reason" not in headers, "parked by the consumer, not by the broker's delivery limit"
    wait_counted(mongo_db, len(healthy), timeout=10)
    assert_stored_exactly_once(mongo_db, healthy)
    assert list(mongo_db.attempts.find()) == []
