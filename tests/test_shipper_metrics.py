"""The shipper's /metrics and /healthz, for operators and their alerting."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from common.localservices import free_port
from tests.helpers import wait_until
from tests.shipper_support import QueueReader, append, metric, numbered, running_shipper, shipper_config


def test_metrics_count_lines_records_parse_errors_and_bytes_behind_and_healthz_reports_the_broker(
        tmp_path, write_config, amqp_url, names):
    log = tmp_path / "app.jsonl"
    append(log, ['{"level": "info", "msg": "ok"}'] * 9 + ["not json at all"])
    listen = f"127.0.0.1:{free_port()}"
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "m", "format": "json"}],
                            metrics_listen=listen)
    reader = QueueReader(amqp_url, names.queue)
    try:
        with running_shipper(config):
            reader.wait_for(10)
            wait_until(lambda: metric(listen, "opslog_shipper_records_published_total") == 10,
                       message="records published counted")
            assert metric(listen, "opslog_shipper_lines_read_total") == 10
            assert metric(listen, "opslog_shipper_parse_errors_total") == 1
            assert metric(listen, "opslog_shipper_reconnects_total") == 0
            assert metric(listen, "opslog_shipper_open_files") == 1
            assert metric(listen, "opslog_shipper_bytes_behind", f'path="{log}"') == 0
            with urllib.request.urlopen(f"http://{listen}/healthz", timeout=5) as response:
                assert response.status == 200
                assert json.loads(response.read()) == {"status": "ok", "checks": {"broker": True}}
    finally:
        reader.close()


def test_bytes_behind_shows_what_waits_in_a_file_that_cannot_be_shipped(tmp_path, write_config):
    log = tmp_path / "app.log"
    append(log, numbered("stuck", 0, 100))
    listen = f"127.0.0.1:{free_port()}"
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "m"}], metrics_listen=listen,
                            amqp={"url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"})
    with running_shipper(config):
        wait_until(lambda: metric(listen, "opslog_shipper_bytes_behind", f'path="{log}"') == log.stat().st_size,
                   message="the whole file is behind")
        try:
            urllib.request.urlopen(f"http://{listen}/healthz", timeout=5)
            raise AssertionError("healthz must fail while the broker is unreachable")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
