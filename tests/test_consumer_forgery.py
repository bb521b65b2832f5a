"""What one shipper sends cannot distort what the others see, through a real `opslog consume`:
a forged `received_at` is clamped to the consumer's clock, host and app names holding `|` get
rollups of their own, a host with endless file names keeps being counted, and a host name of
megabytes is dead-lettered instead of wedging the counters."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from common.amqp import REASON_HEADER
from common.record import MAX_NAME_CHARS
from consumer.store.counters import HOST_LIST_KEEP, HOST_NAME_MAX
from tests.consumer_support import (
    assert_stored_exactly_once,
    bodies,
    dead_letters,
    make_records,
    publish,
    wait_attached,
    wait_counted,
)
from tests.helpers import queue_depth, run_opslog, stop, wait_until

YEAR_9999 = datetime(9999, 12, 31, tzinfo=UTC).timestamp()


def consume(tmp_path, write_config, amqp_url, names, mongo_db, messages, expected):
    """Run a consumer until the records of `messages` (`expected`) are stored and counted."""
    consumer = run_opslog("consume", config=write_config(tmp_path, consumer={"batch_max_wait": "0.2s"}))
    try:
        wait_attached(amqp_url, names.queue)
        publish(amqp_url, names.exchange, messages)
        wait_counted(mongo_db, len(expected), timeout=30)
        wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
    finally:
        assert stop(consumer) == 0, consumer.output()


def test_a_received_at_from_year_9999_is_clamped_to_the_consumers_clock(tmp_path, write_config, amqp_url, names,
                                                                        mongo_db):
    """Otherwise the records would outlive any retention (TTL on received_at) and the host's
    `last_seen` would stay pinned in 9999 whatever it sends later."""
    forged = make_records("web-01", 20, received_at=YEAR_9999 - 60)
    forged = [dataclasses.replace(r, ts=None) if i % 2 else r for i, r in enumerate(forged)]  # ts falls back
    before = datetime.now(UTC) - timedelta(milliseconds=1)  # the database keeps milliseconds
    consume(tmp_path, write_config, amqp_url, names, mongo_db, bodies(forged, 10), forged)
    after = datetime.now(UTC)
    stored = list(mongo_db.logs.find({}, {"received_at": 1, "ts": 1}))
    assert len(stored) == len(forged)
    assert all(before <= d["received_at"].replace(tzinfo=UTC) <= after for d in stored)
    assert sum(before <= d["ts"].replace(tzinfo=UTC) <= after for d in stored) == 10, "a missing ts is received_at"
    host = mongo_db.hosts.find_one({"_id": "web-01"})
    assert before <= host["last_seen"].replace(tzinfo=UTC) <= after


def test_host_and_app_names_holding_a_bar_get_rollups_of_their_own(tmp_path, write_config, amqp_url, names,
                                                                     mongo_db):
    """Rollup ids joined the parts with `|`: (web, x|y) and (web|x, y) were one rollup, and
    the second host's records were counted as the first's."""
    one = make_records("web", 30, app="x|y")
    two = make_records("web|x", 10, app="y")
    consume(tmp_path, write_config, amqp_url, names, mongo_db, bodies(one, 15) + bodies(two, 10), one + two)
    assert_stored_exactly_once(mongo_db, one + two)


def test_a_host_with_more_files_than_listed_is_still_counted(tmp_path, write_config, amqp_url, names, mongo_db):
    """`hosts.sources` is capped: without a cap, a host with millions of file names grows its
    document past 16 MB, and every later update of that host fails."""
    files = [f"/var/log/app/{n:05d}.log" for n in range(HOST_LIST_KEEP + 200)] + ["/" + "x" * HOST_NAME_MAX]
    records = [r for n, source in enumerate(files) for r in make_records("web-01", 1, first=n, source=source)]
    consume(tmp_path, write_config, amqp_url, names, mongo_db, bodies(records, 300), records)
    assert_stored_exactly_once(mongo_db, records)
    host = mongo_db.hosts.find_one({"_id": "web-01"})
    assert len(host["sources"]) == HOST_LIST_KEEP
    assert all(len(source) <= HOST_NAME_MAX for source in host["sources"])
    assert host["apps"] == ["web"]


def test_a_host_name_of_megabytes_is_dead_lettered_and_the_records_around_it_are_stored(tmp_path, write_config,
                                                                                          amqp_url, names, mongo_db):
    """Host and app names make the counters' ids: 5 MB of each would make a rollup update of 20 MB,
    which no database stores, however often the consumer retries."""
    before, after = make_records("web-01", 20), make_records("web-01", 20, first=20)
    huge = make_records("h" * (5 << 20), 1, app="a" * (5 << 20))
    consume(tmp_path, write_config, amqp_url, names, mongo_db, bodies(before, 20) + bodies(huge, 1) + bodies(after, 20),
            before + after)
    assert_stored_exactly_once(mongo_db, before + after)
    [(_, headers)] = dead_letters(amqp_url, names.dead_letter_queue)
    assert f"record field 'host' is longer than {MAX_NAME_CHARS} characters" in headers[REASON_HEADER]
