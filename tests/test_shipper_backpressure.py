"""When the broker cannot take records, lines wait in the files, not in the shipper's memory."""

from __future__ import annotations

import threading
import time

import pytest

from common.localservices import free_port
from tests.helpers import wait_until
from tests.shipper_support import (
    QueueReader,
    append,
    metric,
    numbered,
    running_shipper,
    shipper_config,
    vm_rss_kib,
)

MIB = 1 << 20


def set_memory_watermark(node, fraction: str) -> None:
    """A memory alarm on demand: below the node's own usage, the broker blocks every publisher."""
    node.ctl("set_vm_memory_high_watermark", fraction)


def lines_read(listen: str) -> float:
    return metric(listen, "opslog_shipper_lines_read_total") or 0.0


def once_steady(read, quiet: float = 1.0, timeout: float = 30.0) -> float:
    """What `read()` returns once it has not changed for `quiet` seconds."""
    deadline, last = time.monotonic() + timeout, read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError(f"still changing after {timeout:.0f}s (last value {last})")


def test_a_blocked_broker_stops_the_shipper_reading_until_the_alarm_clears(tmp_path, write_config, private_rabbit,
                                                                           names):
    log = tmp_path / "app.log"
    append(log, numbered("before", 0, 1000))
    listen = f"127.0.0.1:{free_port()}"
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "bp"}], metrics_listen=listen,
                            batch_max_records=500, amqp={"url": private_rabbit.url})
    reader = QueueReader(private_rabbit.url, names.queue)
    try:
        with running_shipper(config):
            reader.wait_for(1000)
            set_memory_watermark(private_rabbit, "0.0000001")
            try:
                during = numbered("during", 0, 100_000)
                append(log, during)
                # It reads what fills its buffer, then nothing more however long the block lasts.
                wait_until(lambda: lines_read(listen) > 1000, message="reading started")
                stalled = once_steady(lambda: lines_read(listen))
                assert stalled < 1000 + len(during), "it stopped before the end of the file"
                time.sleep(2.0)
                assert lines_read(listen) == stalled, "still not reading"
            finally:
                set_memory_watermark(private_rabbit, "0.4")
            received = reader.wait_for(1000 + len(during), timeout=120, message="everything after the alarm")
            reader.settle(1.0)
    finally:
        reader.close()
    received.assert_exactly_once(numbered("before", 0, 1000) + during)


def write_paced(path, lines, seconds: float) -> None:
    """Append `lines` spread evenly over about `seconds`, as a busy service would."""
    chunks = 100
    per_chunk = len(lines) // chunks
    for n in range(chunks):
        append(path, lines[n * per_chunk:(n + 1) * per_chunk])
        time.sleep(seconds / chunks)


@pytest.mark.slow
def test_a_30_s_broker_outage_with_100k_lines_written_loses_none_duplicates_none_and_memory_stays_under_the_cap(
        tmp_path, write_config, private_rabbit, names):
    log = tmp_path / "app.log"
    cap = 4 * MIB
    listen = f"127.0.0.1:{free_port()}"
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "outage"}],
                            max_buffer_bytes=cap, batch_max_bytes=512 * 1024, metrics_listen=listen,
                            reconnect_max_wait="2s", amqp={"url": private_rabbit.url})
    before, during = numbered("before", 0, 20_000), numbered("during", 0, 100_000)
    reader = QueueReader(private_rabbit.url, names.queue)
    try:
        with running_shipper(config) as shipper:
            append(log, before)
            reader.wait_for(len(before))
            baseline = max(vm_rss_kib(shipper.pid) for _ in range(5) if not time.sleep(0.1))

            samples: list[int] = []
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.is_set():
                    samples.append(vm_rss_kib(shipper.pid))
                    time.sleep(0.1)
            private_rabbit.stop()
            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                began = time.monotonic()
                write_paced(log, during, seconds=25)
                time.sleep(max(0.0, 30 - (time.monotonic() - began)))
            finally:
                sampling.set()
                sampler.join()
            private_rabbit.start()
            received = reader.wait_for(len(before) + len(during), timeout=180, message="all lines after the outage")
            reader.settle(1.0)
            assert (metric(listen, "opslog_shipper_reconnects_total") or 0) >= 1
    finally:
        reader.close()
    received.assert_exactly_once(before + during)
    assert max(samples) <= baseline + cap // 1024, (
        f"RSS peaked at {max(samples)} KiB against a baseline of {baseline} KiB and a cap of {cap // 1024} KiB")
