"""Scaling consumers out: 1, 2 or 4 `opslog consume` processes store the same result, each record once."""

from __future__ import annotations

from pathlib import Path

import pymongo

from common.localservices import free_port
from tests.conftest import with_database
from tests.consumer_support import consumers_attached
from tests.helpers import delete_amqp_objects, run_opslog, stop, wait_until
from tests.test_deploy_import import consumer_metric

LEVELS = ("INFO", "WARN", "ERROR", "DEBUG")


def write_app_log(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(f"2024-05-01T12:{(i // 60) % 60:02d}:{i % 60:02d}Z {LEVELS[i % 4]} {path.stem}: order {i} "
                      f"took {i % 977}ms\n" for i in range(count))


def stored_result(db) -> tuple[list, list, list]:
    """What the pipeline stored, without what differs between runs by design (arrival time,
    the id of the AMQP message that brought a record)."""
    logs = sorted((d["_id"], d["host"], d["app"], d["source"], d["offset"], d["message"], d["ts"], d.get("level"),
                   d["fields"]) for d in db.logs.find({}, {"received_at": 0, "batch": 0}))
    rollups = sorted((d["_id"], d["n"]) for d in db.rollups.find({}, {"n": 1}))
    hosts = sorted((d["_id"], d["records"], d.get("errors")) for d in db.hosts.find())
    return logs, rollups, hosts


def test_one_two_or_four_consumers_store_the_same_records_exactly_once(tmp_path, write_config, amqp_url, mongo_uri,
                                                                       names):
    files = [tmp_path / "logs" / "api.log", tmp_path / "logs" / "worker.log"]
    files[0].parent.mkdir()
    for path in files:
        write_app_log(path, 3000)
    total = 6000
    results = {}
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10000)
    try:
        for count in (1, 2, 4):
            tag = f"{names.exchange}-x{count}"
            database = f"{names.database}_x{count}"
            ports = [free_port() for _ in range(count)]
            configs = [write_config(tmp_path / f"x{count}" / f"c{i}", mongo={"uri": with_database(mongo_uri, database)},
                                    amqp={"exchange": tag, "queue": f"{tag}.records",
                                          "dead_letter_queue": f"{tag}.dead"},
                                    shipper={"host": "app-01", "batch_max_records": 100, "inputs": [
                                        {"paths": [str(tmp_path / "logs" / "*.log")], "app": "shop"}]},
                                    consumer={"prefetch": 2, "batch_max_records": 400,
                                              "metrics_listen": f"127.0.0.1:{port}"})
                       for i, port in enumerate(ports)]
            consumers = [run_opslog("consume", config=config) for config in configs]
            try:
                wait_until(lambda: consumers_attached(amqp_url, f"{tag}.records") == count,  # noqa: B023
                           timeout=60, message=f"{count} consumers attached")
                importer = run_opslog("import", "--quiet", *map(str, files), config=configs[0])
                assert importer.wait(timeout=120) == 0, importer.output()
                db = client[database]
                wait_until(lambda: db.logs.count_documents({}) >= total, timeout=120,  # noqa: B023
                           message=f"{total} records stored by {count} consumer(s)")
                # The counters move just after the database write: wait for them too.
                wait_until(lambda: sum(consumer_metric(p, "opslog_consumer_records_stored_total")  # noqa: B023
                                       for p in ports) >= total, timeout=30, message="stored counters")  # noqa: B023
                stored = [consumer_metric(port, "opslog_consumer_records_stored_total") for port in ports]
            finally:
                codes = [stop(proc) for proc in consumers]
            assert codes == [0] * count, [proc.output()[-2000:] for proc in consumers]
            assert sum(stored) == total, f"{count} consumers inserted {stored}: each record once"
            assert all(n > 0 for n in stored), f"every one of the {count} consumers took a share: {stored}"
            results[count] = stored_result(db)
            delete_amqp_objects(amqp_url, queues=(f"{tag}.records", f"{tag}.dead"),
                                exchanges=(tag, tag + ".dlx"))
        assert len(results[1][0]) == total
        assert results[1] == results[2] == results[4]
        assert sum(n for _, n in results[1][1]) == total
    finally:
        for count in (1, 2, 4):
            client.drop_database(f"{names.database}_x{count}")
        client.close()
