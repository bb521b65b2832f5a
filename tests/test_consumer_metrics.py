"""`metrics_listen` on a real `opslog consume`: Prometheus counters for what it
did, and /healthz answering 503 while the broker or the database is unreachable."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson

from common.localservices import free_port
from tests.consumer_support import bodies, make_records, publish, wait_attached
from tests.helpers import metric, run_opslog, stop, wait_until


def health(port: int) -> tuple[int, dict]:
    """Status and body of /healthz; (0, {"checks": {}}) while the endpoint is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())
    except OSError:
        return 0, {"checks": {}}


def test_metrics_count_what_was_stored_skipped_dead_lettered_and_retried(tmp_path, write_config, private_mongo,
                                                                          amqp_url, names):
    port = free_port()
    config = write_config(tmp_path, mongo={"uri": private_mongo.uri},
                          consumer={"metrics_listen": f"127.0.0.1:{port}", "retry_max_wait": "1s"})
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        messages = bodies(make_records("web-01", 300), 100)
        publish(amqp_url, names.exchange, [*messages, b"garbage", messages[0]])
        wait_until(lambda: metric(port, "opslog_consumer_records_stored") == 300, timeout=30, message="300 stored")
        wait_until(lambda: metric(port, "opslog_consumer_duplicates_skipped") == 100, timeout=10,
                   message="the message sent twice counted as duplicates")
        assert metric(port, "opslog_consumer_dead_lettered") == 1
        assert metric(port, "opslog_consumer_batch_seconds_count") >= 1
        assert metric(port, "opslog_consumer_retries") == 0

        private_mongo.stop()
        publish(amqp_url, names.exchange, bodies(make_records("web-01", 100, first=300), 100))
        wait_until(lambda: (metric(port, "opslog_consumer_retries") or 0) >= 2, timeout=30,
                   message="retries while the database is down")
        private_mongo.start()
        wait_until(lambda: metric(port, "opslog_consumer_records_stored") == 400, timeout=30,
                   message="stored once the database is back")
    finally:
        assert stop(consumer) == 0, consumer.output()


def test_healthz_reports_broker_and_database_reachability(tmp_path, write_config, private_rabbit, private_mongo):
    port = free_port()
    config = write_config(tmp_path, amqp={"url": private_rabbit.url}, mongo={"uri": private_mongo.uri},
                          consumer={"metrics_listen": f"127.0.0.1:{port}", "retry_max_wait": "1s"})
    consumer = run_opslog("consume", config=config)
    try:
        ok = (200, {"status": "ok", "checks": {"broker": True, "database": True}})
        wait_until(lambda: health(port) == ok, timeout=30, message="healthy once connected")
        private_mongo.stop()
        assert health(port) == (503, {"status": "degraded", "checks": {"broker": True, "database": False}})
        private_mongo.start()
        wait_until(lambda: health(port) == ok, timeout=30, message="healthy with the database back")
        private_rabbit.stop()
        wait_until(lambda: health(port)[1]["checks"] == {"broker": False, "database": True}, timeout=30,
                   message="the broker reported down")
        assert health(port)[0] == 503
        private_rabbit.start()
        wait_until(lambda: health(port) == ok, timeout=60, message="healthy with the broker back")
    finally:
        assert stop(consumer) == 0, consumer.output()
