"""Container logs on a Kubernetes node, through real processes: `opslog ship` reading a
/var/log/pods-shaped tree (cri and docker framings), RabbitMQ, `opslog consume`, the database."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson

from tests.helpers import run_opslog, stop, wait_until
from tests.shipper_support import QueueReader, Received, kill9, running_shipper, shipper_config

UID = "0b6c6f0e-1111-2222-3333-444455556666"
STAMP = "2026-11-30T10:00:00.123456789Z"


def cri(text: str, tag: str = "F", stream: str = "stdout") -> str:
    return f"{STAMP} {stream} {tag} {text}"


def docker(text: str, stream: str = "stdout") -> str:
    return orjson.dumps({"log": text, "stream": stream, "time": STAMP}).decode()


def write(path: Path, lines: list[str]) -> int:
    """Append lines; the offset the first one starts at."""
    path.parent.mkdir(parents=True, exist_ok=True)
    start = path.stat().st_size if path.exists() else 0
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
    return start


def pod_log(root: Path, container: str, name: str = "0.log") -> Path:
    return root / "var/log/pods" / f"shop_web-7d9f_{UID}" / container / name


def test_a_kubernetes_node_s_container_logs_are_stored_joined_with_their_pod_names_across_a_rotation(
        tmp_path, write_config, mongo_db):
    nginx, sidecar = pod_log(tmp_path, "nginx"), pod_log(tmp_path, "sidecar")
    long_parts = [f"{i}" * 1000 for i in range(6)]  # 6000 bytes joined, over max_line_bytes
    write(nginx, [cri("GET / 200"), cri("stack part one, ", "P"), cri("part two, ", "P"), cri("end")])
    joined_at = len(cri("GET / 200")) + 1
    long_at = write(nginx, [*(cri(part, "P") for part in long_parts[:-1]), cri(long_parts[-1]),
                            cri("boom", stream="stderr")])
    write(sidecar, [docker("first half "), docker("second half\n"), docker("alone\n", "stderr")])
    gz = pod_log(tmp_path, "nginx", "0.log.20261130-090000.gz")
    gz.write_bytes(gzip.compress("".join(cri(f"old {i}") + "\n" for i in range(3000)).encode()))
    pods = tmp_path / "var/log/pods"
    config = write_config(tmp_path, shipper={"scan_interval": "0.2s", "batch_max_wait": "0.1s", "inputs": [
        {"paths": [str(pods / "*/nginx/*.log*")], "format": "cri", "max_line_bytes": "4KiB"},
        {"paths": [str(pods / "*/sidecar/*.log*")], "format": "docker"}]})
    consumer = run_opslog("consume", config=config)
    shipper = run_opslog("ship", config=config)
    try:
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 6, timeout=60, message="6 records stored")
        rotated = nginx.with_name("0.log.20261130-100500")
        nginx.rename(rotated)  # the kubelet's rotation; the runtime writes on until it reopens
        write(rotated, [cri("late, ", "P"), cri("after the rename")])
        write(nginx, [cri("in the new file")])
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 8, timeout=60, message="8 records stored")
    finally:
        assert stop(shipper) == 0, shipper.output()
        assert stop(consumer) == 0, consumer.output()

    messages = sorted(d["message"] for d in mongo_db.logs.find() if len(d["message"]) < 100)
    assert messages == sorted(["GET / 200", "stack part one, part two, end", "boom", "first half second half",
                               "alone", "late, after the rename", "in the new file"])
    assert mongo_db.logs.count_documents({}) == 8
    joined = mongo_db.logs.find_one({"message": "stack part one, part two, end"})
    assert joined["offset"] == joined_at, "a joined line is found at its first part"
    assert joined["app"] == "nginx" and joined["source"] == str(nginx)
    assert joined["fields"] == {"stream": "stdout", "k8s": {"namespace": "shop", "pod": "web-7d9f",
                                                             "container": "nginx"}}
    assert joined["ts"].isoformat() == "2026-11-30T10:00:00.123000", "the runtime's time (to the ms BSON keeps)"
    cut = mongo_db.logs.find_one({"offset": long_at, "app": "nginx"})
    assert cut["message"] == "".join(long_parts)[:4096] and "max_line_bytes" in cut["parse_error"]
    assert mongo_db.logs.find_one({"message": "boom"})["fields"]["stream"] == "stderr"
    half = mongo_db.logs.find_one({"message": "first half second half"})
    assert (half["offset"], half["app"], half["fields"]["stream"]) == (0, "sidecar", "stdout")
    assert mongo_db.logs.count_documents({"source": {"$regex": r"\.gz$"}}) == 0, "gzipped rotations are skipped"


def test_a_shipper_killed_between_the_parts_of_a_line_ships_it_once_whole_after_restart(
        tmp_path, write_config, amqp_url, names):
    log = pod_log(tmp_path, "api")
    write(log, [cri("before"), cri("first part, ", "P"), cri("second part, ", "P")])
    held_from = len(cri("before")) + 1
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "format": "cri"}])
    registry = tmp_path / "shipper-state" / "registry.json"

    def confirmed() -> int:
        try:
            return max((f["offset"] for f in json.loads(registry.read_text())["files"].values()), default=0)
        except (OSError, ValueError):
            return 0

    reader = QueueReader(amqp_url, names.queue)
    try:
        shipper = run_opslog("ship", config=config)
        try:
            reader.wait_for(1)
            wait_until(lambda: confirmed() > 0, timeout=30, message="the registry saved")
            assert confirmed() == held_from, "the confirmed offset stops before the parts being joined"
        finally:
            kill9(shipper)
        write(log, [cri("last part"), cri("after")])
        with running_shipper(config):
            received = reader.wait_for(3)
            reader.settle(1.0)
    finally:
        reader.close()
    by_message = {r["message"]: r for r in received.by_id.values()}
    assert sorted(by_message) == ["after", "before", "first part, second part, last part"]
    assert len(received.by_id) == 3, "no part was shipped on its own"
    assert by_message["first part, second part, last part"]["offset"] == held_from


def test_opslog_import_of_a_container_log_makes_the_records_the_shipper_made(tmp_path, write_config, amqp_url,
                                                                             names):
    log = pod_log(tmp_path, "api")
    write(log, [cri("whole"), cri("split ", "P"), cri("line"), cri("err", stream="stderr")])
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "format": "cri"}])

    def records(received: Received) -> dict[str, tuple]:
        return {i: tuple(r.get(k) for k in ("app", "offset", "ts", "message", "fields", "parse_error"))
                for i, r in received.by_id.items()}

    reader = QueueReader(amqp_url, names.queue)
    try:
        with running_shipper(config):
            shipped = records(reader.wait_for(3))
            reader.settle(0.5)
        reader.received = Received()
        proc = run_opslog("import", str(log), config=config)
        assert proc.wait(timeout=120) == 0, proc.output()
        imported = records(reader.wait_for(3))
    finally:
        reader.close()
    assert imported == shipped, "the same ids, app, fields and times: an import doubles nothing"
    assert sorted(r[3] for r in shipped.values()) == ["err", "split line", "whole"]
