"""The live tail through real processes: files -> opslog ship -> RabbitMQ -> several opslog consume
-> MongoDB -> GET /api/tail. Walking the tail yields every line exactly once, even when a consumer
commits its batch long after the others committed later ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common.config import load_config
from tests.helpers import REPO_ROOT, run_opslog, stop, wait_until
from tests.test_pipeline import shipper_inputs, write_lines
from webui import create_app


class Tail:
    """A script following /api/tail from the current end, as `curl` in a loop would."""

    def __init__(self, config: Path, db):
        self.client = create_app(load_config(str(config)), db=db).test_client()
        body = self.get()
        assert body["records"] == []
        self.cursor, self.records = body["next_cursor"], []

    def get(self, **args) -> dict:
        response = self.client.get("/api/tail", query_string={"limit": 1000, **args})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def follow(self) -> bool:
        """Read until caught up; True when something new came."""
        before = len(self.records)
        while True:
            body = self.get(cursor=self.cursor)
            self.records += body["records"]
            self.cursor = body["next_cursor"]
            if body["caught_up"]:
                return len(self.records) > before

    def lines(self) -> list[tuple[str, int]]:
        return [(r["source"], r["offset"]) for r in self.records]


def written(path: Path) -> list[tuple[str, int]]:
    out, pos = [], 0
    for raw in path.read_bytes().splitlines(keepends=True):
        out.append((str(path), pos))
        pos += len(raw)
    return out


def start_stalling_consumer(config: Path, stall_file: Path, log: Path) -> subprocess.Popen[bytes]:
    """tests.stalling_consumer: a consumer that freezes (SIGSTOP) between reserving a block and
    inserting it, and writes the block's first position and size to `stall_file`."""
    with open(log, "wb") as out:
        env = {"OPSLOG_TEST_STALL_FILE": str(stall_file), "PYTHONPATH": str(REPO_ROOT)}
        return subprocess.Popen([sys.executable, "-m", "tests.stalling_consumer", "-c", str(config)],
                                cwd=REPO_ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def test_a_burst_of_20000_lines_in_5_s_with_two_consumers_is_tailed_exactly_once(tmp_path, write_config, mongo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "burst.log"
    path.touch()
    config = write_config(tmp_path, shipper=shipper_inputs(logs) | {"batch_max_records": 500})
    consumers = [run_opslog("consume", config=config) for _ in range(2)]
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: mongo_db.arrival.find_one({"_id": "logs"}), timeout=30, message="consumers ready")
        tail = Tail(config, mongo_db)
        write_lines(path, 20_000, per_second=4000)
        deadline = time.monotonic() + 120
        while len(tail.records) < 20_000 and time.monotonic() < deadline:
            tail.follow() or time.sleep(0.2)
        time.sleep(1.0)
        tail.follow()  # anything sent twice would show up now
        lines = tail.lines()
        assert len(lines) == 20_000 and sorted(lines) == written(path), "every line once"
        assert mongo_db.logs.count_documents({}) == 20_000
        assert len({doc["batch"] for doc in mongo_db.logs.find({}, {"batch": 1})}) > 1
    finally:
        assert stop(shipper) == 0, shipper.output()
        for proc in consumers:
            assert stop(proc) == 0, proc.output()


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_three_consumers_one_frozen_between_sequence_and_insert_its_late_commit_is_not_skipped(
        tmp_path, write_config, mongo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    path.touch()
    config = write_config(tmp_path, shipper=shipper_inputs(logs) | {"batch_max_records": 200},
                          consumer={"prefetch": 2})
    stall_file = tmp_path / "stalled"
    stalling = start_stalling_consumer(config, stall_file, tmp_path / "stalling-consumer.log")
    consumers = [run_opslog("consume", config=config) for _ in range(2)]
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: mongo_db.arrival.find_one({"_id": "logs"}), timeout=30, message="consumers ready")
        tail = Tail(config, mongo_db)
        write_lines(path, 6000, per_second=3000)
        wait_until(lambda: stall_file.exists() and process_state(stalling.pid) == "T", timeout=30,
                   message="one consumer froze holding a block")
        first, count = map(int, stall_file.read_text().split())
        # the others go on storing: records with later positions are committed while it is frozen
        wait_until(lambda: mongo_db.logs.count_documents({"arrival": {"$gt": first + count}}) >= 1000, timeout=60,
                   message="later batches stored by the two others")
        tail.follow()
        shown = {r["id"] for r in tail.records}  # none when the frozen block happens to be the first
        below = {d["_id"] for d in mongo_db.logs.find({"arrival": {"$lt": first}}, {"_id": 1})}
        assert shown == below, "the tail stops at the frozen block, though later records are stored"
        stalling.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 90
        while len(tail.records) < 6000 and time.monotonic() < deadline:
            tail.follow() or time.sleep(0.2)
        lines = tail.lines()
        assert len(lines) == 6000 and sorted(lines) == written(path), "the late commit was not skipped"
        late = mongo_db.logs.count_documents({"arrival": {"$gte": first, "$lt": first + count}})
        assert late == count, "the frozen consumer stored its batch at the positions it reserved"
    finally:
        stalling.send_signal(signal.SIGCONT)
        assert stop(shipper) == 0, shipper.output()
        for proc in consumers:
            assert stop(proc) == 0, proc.output()
        assert stop(stalling) == 0, (tmp_path / "stalling-consumer.log").read_text()


def test_a_consumer_killed_holding_a_block_holds_the_tail_only_until_its_lease_ends(tmp_path, write_config,
                                                                                    mongo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    path.touch()
    config = write_config(tmp_path, shipper=shipper_inputs(logs) | {"batch_max_records": 200},
                          consumer={"prefetch": 2, "arrival_lease": "4s"})
    stall_file = tmp_path / "stalled"
    stalling = start_stalling_consumer(config, stall_file, tmp_path / "stalling-consumer.log")
    consumers = [run_opslog("consume", config=config) for _ in range(2)]
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: mongo_db.arrival.find_one({"_id": "logs"}), timeout=30, message="consumers ready")
        tail = Tail(config, mongo_db)
        write_lines(path, 3000, per_second=3000)
        wait_until(lambda: stall_file.exists() and process_state(stalling.pid) == "T", timeout=30,
                   message="one consumer froze holding a block")
        first, count = map(int, stall_file.read_text().split())
        stalling.kill()  # it dies there: its block stays open, its messages go back to the queue
        stalling.wait()
        deadline = time.monotonic() + 90
        while len(tail.records) < 3000 and time.monotonic() < deadline:
            tail.follow() or time.sleep(0.2)
        lines = tail.lines()
        assert len(lines) == 3000 and sorted(lines) == written(path), "every line once, past the dead block"
        assert mongo_db.logs.count_documents({"arrival": {"$gte": first, "$lt": first + count}}) == 0, \
            "nothing was stored at the dead block's positions: its records came again with new ones"
    finally:
        assert stop(shipper) == 0, shipper.output()
        for proc in consumers:
            assert stop(proc) == 0, proc.output()
