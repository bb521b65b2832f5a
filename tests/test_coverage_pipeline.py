"""Per-file coverage through real processes: files -> opslog ship -> RabbitMQ -> opslog consume ->
MongoDB -> `GET /api/hosts/<host>/files`, `/verify`, `/api/hosts` and `opslog verify`."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

from common.config import load_config
from tests.helpers import run_opslog, stop, wait_until
from webui import create_app

HOST = "test-host"


def write_lines(path: Path, count: int, start: int = 0) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for i in range(start, start + count):
            fh.write(f"{path.name} line {i:06d} GET /api/orders/{i} took {i % 997}ms\n")


def pipeline_config(write_config, tmp_path: Path, logs: Path, **webui: Any) -> Path:
    return write_config(tmp_path, shipper={"inputs": [{"paths": [str(logs / "*.log*")], "app": "orders"}],
                                           "scan_interval": "0.2s", "batch_max_wait": "0.1s",
                                           "batch_max_records": 300, "heartbeat_interval": "0.5s",
                                           "rotate_wait": "1s"},
                        webui={"auth": "none", **webui})


def client_for(config: Path, db):
    return create_app(load_config(str(config)), db=db).test_client()


def files_of(client, host: str = HOST, verify: bool = False) -> list[dict[str, Any]]:
    response = client.get(f"/api/hosts/{host}/{'verify' if verify else 'files'}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["files"]


def host_row(client, host: str = HOST) -> dict[str, Any]:
    response = client.get("/api/hosts")
    assert response.status_code == 200
    return next(h for h in response.get_json()["hosts"] if h["host"] == host)


def settled(client, sizes: dict[str, int]) -> list[dict[str, Any]] | None:
    """The host's files once each source named in `sizes` is stored to that size with no lag, and a
    heartbeat built after the broker confirmed it all (one built before says less: a race, not a gap)."""
    files = files_of(client)
    by_source = {f["source"]: f for f in files}
    for source, size in sizes.items():
        f = by_source.get(source)
        if (f is None or f["size"] != size or f["stored_through"] != size or f["lag_bytes"] != 0
                or f["confirmed"] != size):
            return None
    return files


def one_file(tmp_path: Path, write_config, mongo_db, lines: int, **webui: Any) -> tuple[Path, Path, Any]:
    """`logs/app.log` with `lines` lines, a config shipping `logs/`, and an API client on it."""
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    write_lines(path, lines)
    config = pipeline_config(write_config, tmp_path, logs, **webui)
    return path, config, client_for(config, mongo_db)


class Pipeline:
    """`opslog consume` and `opslog ship` on one config. A test may stop and start either; on
    leaving, each one the test did not stop must stop cleanly (exit 0), the shipper first."""

    def __init__(self, config: Path):
        self.config = config
        self.procs = {command: run_opslog(command, config=config) for command in ("consume", "ship")}
        self.stopped: set[str] = set()

    def stop(self, command: str) -> None:
        proc = self.procs[command]
        self.stopped.add(command)
        assert stop(proc) == 0, proc.output()

    def start(self, command: str) -> None:
        self.procs[command] = run_opslog(command, config=self.config)
        self.stopped.discard(command)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        for command in ("ship", "consume"):
            if command not in self.stopped:
                self.stop(command)


def run_verify(config: Path, *args: str):
    proc = run_opslog("verify", *args, config=config)
    code = proc.wait(timeout=60)
    return code, proc.output()


def test_a_complete_file_shows_no_gap_and_verifies(tmp_path, write_config, mongo_db):
    path, config, client = one_file(tmp_path, write_config, mongo_db, 3000)
    with Pipeline(config):
        size = path.stat().st_size
        files = wait_until(lambda: settled(client, {str(path): size}), timeout=60, message="file stored")
        [f] = files
        assert (f["first_offset"], f["stored_through"], f["gaps"], f["confirmed"]) == (0, size, [], size)
        assert f["names"] == [str(path)] and f["silent"] is False and f["last_record_at"]
        [checked] = files_of(client, verify=True)
        assert (checked["gaps"], checked["records"], checked["stored_through"]) == ([], 3000, size)
        row = host_row(client)
        assert (row["has_gap"], row["silent"], row["lag_bytes"]) == (False, False, 0)
    code, out = run_verify(config, "--host", HOST)
    assert code == 0, out
    assert f"OK {HOST} {path}" in out and "1 file(s) verified, 0 with gaps" in out


def test_three_records_deleted_in_mongodb_are_exactly_the_gaps_verify_finds(tmp_path, write_config, mongo_db):
    path, config, client = one_file(tmp_path, write_config, mongo_db, 1000)
    with Pipeline(config):
        size = path.stat().st_size
        wait_until(lambda: settled(client, {str(path): size}), timeout=60, message="file stored")
    victims = [mongo_db.logs.find_one({"source": str(path), "offset": {"$gte": at}}, sort=[("offset", 1)])
               for at in (size // 5, size // 2, size * 4 // 5)]
    expected = sorted([v["offset"], v["offset"] + v["len"]] for v in victims)
    assert mongo_db.logs.delete_many({"_id": {"$in": [v["_id"] for v in victims]}}).deleted_count == 3

    [checked] = files_of(client, verify=True)
    assert checked["gaps"] == expected
    assert checked["gap_causes"] == ["deleted"] * 3
    assert checked["records"] == 997
    # the context view opens at each gap's edges: the stored lines just before and just after it
    for (start, end), (before, after) in zip(checked["gaps"], checked["gap_edges"], strict=True):
        b, a = mongo_db.logs.find_one({"_id": before}), mongo_db.logs.find_one({"_id": after})
        assert b["offset"] + b["len"] == start and a["offset"] == end
    code, out = run_verify(config, "--source", str(path))
    assert code == 1, out
    for start, end in expected:
        assert f"[{start}, {end}) deleted" in out
    assert "1 file(s) verified, 1 with gaps" in out


def test_a_stopped_consumer_shows_growing_lag_then_none_once_it_resumes(tmp_path, write_config, mongo_db):
    path, config, client = one_file(tmp_path, write_config, mongo_db, 500)
    with Pipeline(config) as pipeline:
        wait_until(lambda: settled(client, {str(path): path.stat().st_size}), timeout=60, message="first lines")
        pipeline.stop("consume")
        write_lines(path, 500, start=500)

        def lag() -> float:
            [f] = files_of(client)
            return f["lag_seconds"]

        first = wait_until(lambda: lag() or None, timeout=30, message="lag shows while nothing is stored")
        wait_until(lambda: lag() > first + 1 or None, timeout=30, message="lag grows")
        assert host_row(client)["lag_seconds"] > first
        pipeline.start("consume")
        files = wait_until(lambda: settled(client, {str(path): path.stat().st_size}), timeout=60,
                           message="caught up")
        assert files[0]["lag_seconds"] == 0 and files[0]["gaps"] == []
        assert host_row(client)["lag_bytes"] == 0


def test_a_stopped_shipper_shows_the_host_silent(tmp_path, write_config, mongo_db):
    path, config, client = one_file(tmp_path, write_config, mongo_db, 200, stale_after="3s")
    with Pipeline(config) as pipeline:
        wait_until(lambda: settled(client, {str(path): path.stat().st_size}), timeout=60, message="stored")
        assert host_row(client)["silent"] is False
        pipeline.stop("ship")
        wait_until(lambda: host_row(client)["silent"] is True, timeout=30, message="host silent")
        [f] = files_of(client)
        assert f["silent"] is True and f["gaps"] == []
        pipeline.start("ship")
        wait_until(lambda: host_row(client)["silent"] is False, timeout=30, message="host heard again")


def test_rotation_by_rename_keeps_one_history_per_file(tmp_path, write_config, mongo_db):
    path, config, client = one_file(tmp_path, write_config, mongo_db, 800)
    rotated = path.with_name("app.log.1")
    with Pipeline(config):
        wait_until(lambda: settled(client, {str(path): path.stat().st_size}), timeout=60, message="first lines")
        os.rename(path, rotated)
        write_lines(rotated, 300, start=800)  # the writer still holds the renamed file
        write_lines(path, 400)
        files = wait_until(lambda: settled(client, {str(rotated): rotated.stat().st_size,
                                                    str(path): path.stat().st_size}),
                           timeout=60, message="both stored")
    by_source = {f["source"]: f for f in files}
    old, new = by_source[str(rotated)], by_source[str(path)]
    assert len(files) == 2 and old["file"] != new["file"]
    assert old["names"] == [str(rotated), str(path)], "its current name first, then the one it had"
    assert (old["first_offset"], old["stored_through"], old["gaps"]) == (0, rotated.stat().st_size, [])
    assert (new["first_offset"], new["gaps"], new["names"]) == (0, [], [str(path)])
    assert all(f["gaps"] == [] for f in files_of(client_for(config, mongo_db), verify=True))


def test_rotation_by_copytruncate_continues_the_history_in_the_copy(tmp_path, write_config, mongo_db):
    path, config, client = one_file(tmp_path, write_config, mongo_db, 600)
    copy = path.with_name("app.log.1")
    with Pipeline(config) as pipeline:
        wait_until(lambda: settled(client, {str(path): path.stat().st_size}), timeout=60, message="first lines")
        pipeline.stop("ship")
        write_lines(path, 250, start=600)  # written while the shipper is away: only the copy will hold them
        shutil.copyfile(path, copy)
        with open(path, "r+b") as fh:
            fh.truncate(0)
        write_lines(path, 100, start=10_000)
        pipeline.start("ship")
        files = wait_until(lambda: settled(client, {str(copy): copy.stat().st_size, str(path): path.stat().st_size}),
                           timeout=60, message="copy and new content stored")
    by_source = {f["source"]: f for f in files}
    old, new = by_source[str(copy)], by_source[str(path)]
    assert old["file"] != new["file"]
    assert set(old["names"]) == {str(path), str(copy)}, "the original's lines and the copy's, one history"
    assert (old["first_offset"], old["stored_through"], old["gaps"]) == (0, copy.stat().st_size, [])
    sources = {d["source"] for d in mongo_db.logs.find({"file": old["file"]}, {"source": 1})}
    assert sources == {str(path), str(copy)}
    assert mongo_db.logs.count_documents({"file": old["file"]}) == 850
    assert (new["first_offset"], new["stored_through"], new["gaps"]) == (0, path.stat().st_size, [])
    code, out = run_verify(config, "--host", HOST)
    assert code == 0, out


def test_old_shippers_records_are_stored_without_coverage(tmp_path, write_config, mongo_db):
    """A record without `file`/`len` (a shipper older than coverage) is stored as before."""
    from common.record import BatchBuilder, row
    from tests.consumer_support import publish

    builder = BatchBuilder()
    builder.group(HOST, "orders", "/var/log/old.log", 1795660000.0).append(row("old-1", 0, None, "x", None, None, None))
    config = pipeline_config(write_config, tmp_path, tmp_path / "none")
    cfg = load_config(str(config))
    consumer = run_opslog("consume", config=config)
    try:
        wait_until(lambda: _queue_exists(cfg), timeout=30, message="consumer declared its queue")
        publish(cfg.amqp.url, cfg.amqp.exchange, [builder.encode()])
        wait_until(lambda: mongo_db.logs.count_documents({}) == 1, timeout=30, message="stored")
    finally:
        assert stop(consumer, signal.SIGTERM) == 0, consumer.output()
    doc = mongo_db.logs.find_one()
    assert "file" not in doc and "len" not in doc
    assert mongo_db.coverage.count_documents({}) == 0


def _queue_exists(cfg) -> bool:
    from tests.consumer_support import consumers_attached
    return consumers_attached(cfg.amqp.url, cfg.amqp.queue) > 0


