"""`opslog import`: back-filling old files stores each line once, with the shipper's own ids."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import pymongo
import pytest

from common.config import parse_config
from common.localservices import MongoServer, free_port
from shipper.backfill import BackfillError, Progress, plan
from tests.consumer_support import queued_ids
from tests.helpers import metric, run_opslog, stop, wait_until


def write_numbered_lines(path: Path, count: int, start: int = 0) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(f"2024-03-01T10:{(i // 60) % 60:02d}:{i % 60:02d}Z INFO old line {i:07d} of {path.name}\n"
                      for i in range(start, start + count))


def consumer_metric(port: int, name: str) -> float:
    """A counter of a running consumer (0 while it is not up yet)."""
    return metric(port, name) or 0.0


def run_import(config: Path, *paths: Path | str, extra: tuple[str, ...] = ()) -> str:
    proc = run_opslog("import", *extra, *map(str, paths), config=config)
    assert proc.wait(timeout=300) == 0, proc.output()
    return proc.output()


@pytest.mark.slow
def test_importing_200000_lines_twice_stores_them_once(tmp_path, write_config, amqp_url, names):
    """The first import goes through a consumer into the database; the second is held in the
    queue and read there: it carries exactly the ids already stored, which the database's unique
    `_id` turns into "already stored". (A consumer taking a whole second import as duplicates is
    shown on a smaller scale below: on SecantusDB, whose `_id: {$in: [...]}` lookup (the consumer's
    duplicate check) costs O(ids²), 200,000 duplicates take another ~3 minutes.)"""
    old = tmp_path / "old"
    old.mkdir()
    write_numbered_lines(old / "app.log.1", 120_000)
    with gzip.open(old / "app.log.2.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(f"2024-02-28T09:00:00Z WARN older line {i:07d}\n" for i in range(80_000)))
    metrics_port = free_port()
    # A server of its own, in memory: dropping 200,000 documents from the shared one takes
    # longer than storing them.
    with MongoServer(None, in_memory=True) as mongo, pymongo.MongoClient(mongo.uri) as client:
        config = write_config(tmp_path, mongo={"uri": mongo.uri}, shipper={
            "host": "db-01", "inputs": [{"paths": [str(old / "app.log")], "app": "billing", "format": "plain"}]},
            consumer={"metrics_listen": f"127.0.0.1:{metrics_port}"})
        db = client[names.database]
        consumer = run_opslog("consume", config=config)
        try:
            first = run_import(config, old / "app.log.1", old / "app.log.2.gz")
            assert "imported 200,000 records from 2 file(s)" in first
            wait_until(lambda: consumer_metric(metrics_port, "opslog_consumer_records_stored_total") >= 200_000,
                       timeout=300, message="200,000 records stored")
        finally:
            assert stop(consumer) == 0, consumer.output()
        assert db.logs.count_documents({}) == 200_000
        assert sum(r["n"] for r in db.rollups.find()) == 200_000, "volume counted once"
        one = db.logs.find_one({"source": str(old / "app.log.1"), "offset": 0})
        assert (one["host"], one["app"], one["message"]) == (
            "db-01", "billing", "2024-03-01T10:00:00Z INFO old line 0000000 of app.log.1")

        second = run_import(config, old / "app.log.2.gz", old / "app.log.1", extra=("--quiet",))
        assert "imported 200,000 records" in second
        resent = queued_ids(amqp_url, names.queue, take=True)
        assert len(resent) == 200_000
        assert set(resent) == {d["_id"] for d in db.logs.find({}, {"_id": 1})}, "the same ids, all stored"


def test_import_adds_only_what_the_shipper_had_not_sent_even_from_a_compressed_rotation(tmp_path, write_config,
                                                                                    mongo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "app.log"
    write_numbered_lines(live, 3000)
    metrics_port = free_port()
    # Batches of 250: the consumer's duplicate check costs O(ids²) on SecantusDB (see above).
    config = write_config(tmp_path, shipper={"host": "web-07", "batch_max_records": 250, "inputs": [
        {"paths": [str(logs / "*.log")], "app": "shop", "format": "plain"}]},
        consumer={"metrics_listen": f"127.0.0.1:{metrics_port}", "batch_max_records": 250})
    consumer = run_opslog("consume", config=config)
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 3000, timeout=60, message="shipped lines stored")
        assert stop(shipper) == 0, shipper.output()
        # Written while no shipper ran, then rotated and compressed by "logrotate".
        write_numbered_lines(live, 500, start=3000)
        rotated = logs / "app.log.1.gz"
        with open(live, "rb") as src, gzip.open(rotated, "wb") as dst:
            shutil.copyfileobj(src, dst)
        live.unlink()

        output = run_import(config, rotated)
        assert "imported 3,500 records from 1 file(s)" in output
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 3500, timeout=60, message="the gap is filled")
        run_import(config, rotated)
        wait_until(lambda: consumer_metric(metrics_port, "opslog_consumer_duplicates_skipped_total") >= 6500,
                   timeout=60, message="the shipped lines and then the whole second import seen as stored")
    finally:
        stop(shipper)
        assert stop(consumer) == 0, consumer.output()
    assert mongo_db.logs.count_documents({}) == 3500
    by_source = {s: mongo_db.logs.count_documents({"source": s}) for s in mongo_db.logs.distinct("source")}
    assert by_source == {str(live): 3000, str(rotated): 500}, "shipped lines kept their first copy"
    assert sum(r["n"] for r in mongo_db.rollups.find()) == 3500


def test_import_names_every_file_it_cannot_take_and_sends_nothing(tmp_path):
    (tmp_path / "nginx").mkdir()
    known = tmp_path / "nginx" / "access.log-20240131.gz"
    with gzip.open(known, "wt") as fh:
        fh.write('127.0.0.1 - - [31/Jan/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl"\n')
    unknown = tmp_path / "other.log"
    unknown.write_text("x\n")
    config_path = tmp_path / "opslog.yaml"
    config_path.write_text(f"""
amqp: {{url: "amqp://guest:guest@127.0.0.1:1/%2F"}}
shipper:
  host: web-01
  state_dir: {tmp_path / "state"}
  inputs:
    - {{paths: ["{tmp_path}/nginx/*.log"], app: nginx, format: nginx_combined}}
""")
    proc = run_opslog("import", str(known), str(unknown), str(tmp_path / "missing.log"), config=config_path)
    assert proc.wait(timeout=60) == 1
    output = proc.output()
    assert "2 problem(s), nothing sent" in output
    assert "other.log: no shipper input of the config matches it" in output
    assert "missing.log: not a readable regular file" in output
    assert "broker" not in output, "no connection was attempted"


def test_a_rotated_file_takes_the_input_of_its_live_name(tmp_path):
    config = parse_config({"shipper": {"inputs": [
        {"paths": [str(tmp_path / "*.log")], "app": "web", "format": "nginx_combined", "exclude": ["*.gz"]},
        {"paths": [str(tmp_path / "syslog")], "app": "system", "format": "syslog"}]}}, {})
    for name in ("access.log", "access.log.1", "access.log-20240131", "syslog.3.gz"):
        (tmp_path / name).write_bytes(b"line\n")
    files = plan(config, [str(tmp_path / n) for n in ("access.log", "access.log.1", "access.log-20240131",
                                                       "syslog.3.gz")])
    assert [f.input.app for f in files] == ["web", "web", "web", "system"]
    elsewhere = parse_config({"shipper": {"inputs": [{"paths": ["/elsewhere/*.log"], "app": "x"}]}}, {})
    with pytest.raises(BackfillError, match="no shipper input"):
        plan(elsewhere, [str(tmp_path / "access.log.1")])
    forced = plan(config, [str(tmp_path / "access.log.1")], app="legacy", fmt="json")
    assert (forced[0].input.app, forced[0].input.format) == ("legacy", "json")


def test_progress_line_shows_bar_records_rate_and_eta():
    out = io.StringIO()
    progress = Progress(total_bytes=1000, stream=out, tty=True, interval=0)
    progress.started = 100.0
    assert progress.line(records=5000, done_bytes=250, name="app.log.1", now=110.0) == (
        "[######..................]  25%  5,000 records  500/s  ETA 00:30  app.log.1")
    progress.update(10, 10, "a.log")
    progress.update(20, 20, "a.log")
    progress.finish("done")
    drawn = out.getvalue().split("\r")
    assert drawn[0] == "" and len(drawn) == 4, "each update redraws the one line in place"
    assert drawn[1].startswith("[") and drawn[3].startswith("done") and drawn[3].endswith("\n")
    assert len(drawn[3].rstrip("\n")) == len(drawn[2]), "the last text is blanked out, not left behind"


def test_progress_into_a_file_writes_whole_lines_not_carriage_returns():
    out = io.StringIO()
    progress = Progress(total_bytes=10, stream=out, tty=False, log_interval=0)
    progress.update(1, 5, "a.log")
    progress.finish("imported 1 records")
    assert "\r" not in out.getvalue() and out.getvalue().count("\n") == 2
