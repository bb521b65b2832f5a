"""End to end through real processes: files -> opslog ship -> RabbitMQ -> opslog consume -> MongoDB -> API."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pymongo
import pytest

from tests.helpers import queue_depth, run_opslog, stop, wait_until


def write_lines(path: Path, count: int, start: int = 0, per_second: float | None = None) -> list[str]:
    """Append `count` numbered lines to `path` (optionally paced), flushing each one."""
    lines = [f"{path.name} line {i:06d} GET /api/orders/{i} took {i % 997}ms" for i in range(start, start + count)]
    with open(path, "a", encoding="utf-8") as fh:
        for n, line in enumerate(lines):
            fh.write(line + "\n")
            if per_second and n % 100 == 99:
                fh.flush()
                time.sleep(100 / per_second)
    return lines


def expected_offsets(path: Path) -> dict[int, str]:
    offsets, pos = {}, 0
    for raw in path.read_bytes().splitlines(keepends=True):
        offsets[pos] = raw.rstrip(b"\n").decode()
        pos += len(raw)
    return offsets


def assert_stored_exactly_once(db, files: list[Path]) -> None:
    for path in files:
        expected = expected_offsets(path)
        stored = {d["offset"]: d["message"] for d in db.logs.find({"source": str(path)}, {"offset": 1, "message": 1})}
        assert stored == expected, f"{path.name}: {len(stored)} stored vs {len(expected)} written"
    total = sum(len(expected_offsets(p)) for p in files)
    assert db.logs.count_documents({}) == total


def shipper_inputs(log_dir: Path) -> dict:
    return {"inputs": [{"paths": [str(log_dir / "*.log")], "app": "orders", "format": "plain"}]}


def test_every_line_of_two_files_is_stored_once_with_its_origin_and_served_by_the_api(tmp_path, write_config,
                                                                                       mongo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    files = [logs / "a.log", logs / "b.log"]
    for path in files:
        write_lines(path, 5000)
    config = write_config(tmp_path, shipper=shipper_inputs(logs))
    consumer = run_opslog("consume", config=config)
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 10000, timeout=60, message="10,000 lines stored")
        assert_stored_exactly_once(mongo_db, files)
        doc = mongo_db.logs.find_one({"source": str(files[1]), "offset": 0})
        assert (doc["host"], doc["app"]) == ("test-host", "orders")
        assert doc["message"] == "b.log line 000000 GET /api/orders/0 took 0ms"
        rollup_total = sum(r["n"] for r in mongo_db.rollups.find())
        assert rollup_total == 10000, "volume rollups count every stored line once"
    finally:
        assert stop(shipper) == 0, shipper.output()
        assert stop(consumer) == 0, consumer.output()

    from common.config import load_config
    from webui import create_app
    app = create_app(load_config(str(config)), db=mongo_db)
    client = app.test_client()
    seen, cursor = [], None
    while True:
        query = {"host": "test-host", "app": "orders", "limit": 1000, "since": "1h"}
        if cursor:
            query["cursor"] = cursor
        response = client.get("/api/logs", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        seen += [(r["source"], r["offset"]) for r in body["records"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 10000 and len(set(seen)) == 10000, "the API pages through every line exactly once"


def test_shipper_killed_with_sigkill_halfway_resumes_without_loss_or_duplicates(tmp_path, write_config, mongo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    write_lines(path, 2000)
    config = write_config(tmp_path, shipper=shipper_inputs(logs) | {"batch_max_records": 200})
    consumer = run_opslog("consume", config=config)
    shipper = run_opslog("ship", config=config)
    writer = threading.Thread(target=write_lines, args=(path, 8000, 2000, 4000))
    writer.start()
    try:
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 4000, timeout=60, message="first half stored")
        shipper.send_signal(signal.SIGKILL)
        shipper.wait()
        shipper = run_opslog("ship", config=config)
        writer.join()
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 10000, timeout=60, message="all lines stored")
        time.sleep(1.0)  # anything re-sent after the restart has arrived by now
        assert_stored_exactly_once(mongo_db, [path])
    finally:
        writer.join()
        assert stop(shipper) == 0, shipper.output()
        assert stop(consumer) == 0, consumer.output()


def confirmed_offset(state_dir: Path, path: Path) -> int:
    """The shipper's saved, broker-confirmed offset for `path` (0 before the first save)."""
    try:
        files = json.loads((state_dir / "registry.json").read_text())["files"]
    except (FileNotFoundError, ValueError):
        return 0
    return max((e["offset"] for e in files.values() if e["path"] == str(path)), default=0)


@pytest.mark.slow
def test_database_outage_holds_records_in_the_broker_and_loses_none(tmp_path, write_config, private_mongo, amqp_url,
                                                                   names):
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    config = write_config(tmp_path, mongo={"uri": private_mongo.uri}, shipper=shipper_inputs(logs),
                          consumer={"retry_max_wait": "1s"})
    db = pymongo.MongoClient(private_mongo.uri, serverSelectionTimeoutMS=20000)[names.database]
    consumer = run_opslog("consume", config=config)
    shipper = run_opslog("ship", config=config)
    try:
        write_lines(path, 3000)
        wait_until(lambda: db.logs.count_documents({}) >= 3000, timeout=60, message="lines before the outage")
        private_mongo.stop()
        write_lines(path, 5000, start=3000)
        size = path.stat().st_size
        wait_until(lambda: confirmed_offset(tmp_path / "shipper-state", path) == size, timeout=30,
                   message="the shipper published everything while the database is down")
        time.sleep(2)  # the consumer now holds deliveries and retries the database
        assert consumer.poll() is None, "the consumer keeps running through the outage"
        # Had it acked anything it could not store, killing it now would lose those records.
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
        assert queue_depth(amqp_url, names.queue) > 0, "the broker still holds the unstored records"
        private_mongo.start()
        consumer = run_opslog("consume", config=config)
        wait_until(lambda: db.logs.count_documents({}) >= 8000, timeout=90, message="all lines after the outage")
        time.sleep(1.0)
        assert_stored_exactly_once(db, [path])
        assert sum(r["n"] for r in db.rollups.find()) == 8000
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
    finally:
        db.client.close()
        assert stop(shipper) == 0, shipper.output()
        assert stop(consumer) == 0, consumer.output()
