"""SIGTERM stops cleanly without re-sending anything; SIGHUP applies the edited config file."""

from __future__ import annotations

import json
import signal
import time

import yaml

from common.localservices import free_port
from tests.helpers import run_opslog, stop, wait_until
from tests.shipper_support import QueueReader, append, metric, numbered, running_shipper, shipper_config


def saved_offsets(state_dir) -> dict[str, int]:
    files = json.loads((state_dir / "registry.json").read_text())["files"]
    return {entry["path"]: entry["offset"] for entry in files.values()}


def test_sigterm_mid_file_confirms_in_flight_batches_saves_offsets_and_exits_0_so_a_restart_resends_nothing(
        tmp_path, write_config, amqp_url, names):
    log = tmp_path / "big.log"
    lines = numbered("steady", 0, 150_000)
    append(log, lines)
    listen = f"127.0.0.1:{free_port()}"
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "t"}], batch_max_records=500,
                            metrics_listen=listen)
    reader = QueueReader(amqp_url, names.queue)
    try:
        shipper = run_opslog("ship", config=config)
        wait_until(lambda: (metric(listen, "opslog_shipper_records_published_total") or 0) >= 5000, interval=0.005,
                   message="publishing under way")
        assert stop(shipper, signal.SIGTERM) == 0, shipper.output()
        received = reader.settle(0.5)
        assert len(received.by_id) < len(lines), "stopped mid-file"
        saved = saved_offsets(tmp_path / "shipper-state")[str(log)]
        assert saved == max(r["offset"] + len(r["message"]) + 1 for r in received.by_id.values()), \
            "the saved offset is exactly the end of the last confirmed line"
        with running_shipper(config):
            received = reader.wait_for(len(lines), timeout=60)
    finally:
        reader.close()
    received.assert_exactly_once(lines)
    assert max(received.sent.values()) == 1, "after a clean stop no line is sent twice"


def test_sigterm_while_the_broker_is_unreachable_exits_0_promptly(tmp_path, write_config):
    log = tmp_path / "app.log"
    append(log, ["waiting for a broker"])
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "t"}],
                            amqp={"url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"})
    shipper = run_opslog("ship", config=config)
    wait_until(lambda: "broker unavailable" in shipper.output(), timeout=20, message="connection retries")
    began = time.monotonic()
    assert stop(shipper, signal.SIGTERM, timeout=15) == 0, shipper.output()
    assert time.monotonic() - began < 12, "within shutdown_timeout (10 s), not after the backoff"


def test_sighup_applies_new_and_changed_inputs_and_keeps_offsets(tmp_path, write_config, amqp_url, names):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", numbered("a", 0, 100))
    append(logs / "b.log", numbered("b", 0, 50))
    config = shipper_config(write_config, tmp_path, [{"paths": [str(logs / "a.log")], "app": "first"}])
    reader = QueueReader(amqp_url, names.queue)
    try:
        with running_shipper(config) as shipper:
            reader.wait_for(100)
            data = yaml.safe_load(config.read_text())
            data["shipper"]["inputs"] = [{"paths": [str(logs / "a.log")], "app": "renamed"},
                                         {"paths": [str(logs / "b.log")], "app": "second"}]
            config.write_text(yaml.safe_dump(data))
            shipper.send_signal(signal.SIGHUP)
            wait_until(lambda: "SIGHUP: reloaded" in shipper.output(), message="config reloaded")
            append(logs / "a.log", numbered("a", 100, 10))
            reader.wait_for(160)

            config.write_text("shipper: [this is not, a mapping\n")
            shipper.send_signal(signal.SIGHUP)
            wait_until(lambda: "not reloaded" in shipper.output(), message="a broken config is refused")
            append(logs / "b.log", numbered("b", 50, 10))
            received = reader.wait_for(170)
            reader.settle(0.5)
    finally:
        reader.close()
    received.assert_exactly_once(numbered("a", 0, 110) + numbered("b", 0, 60))
    apps = {r["message"]: r["app"] for r in received.by_id.values()}
    assert apps["a line 0000099 GET /api/orders/99 took 99ms"] == "first"
    assert apps["a line 0000100 GET /api/orders/100 took 100ms"] == "renamed", "the changed input applies"
    assert {apps[m] for m in numbered("b", 0, 60)} == {"second"}, "the new input reads its file from the start"
    assert max(received.sent.values()) == 1, "offsets were kept: nothing read twice"
