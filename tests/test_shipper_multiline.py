"""Multiline events: a stack trace travels as one record, found at its first line."""

from __future__ import annotations

from tests.shipper_support import QueueReader, append, running_shipper, shipper_config

START = r"^\d{4}-\d\d-\d\d "


def stack_trace(frames: int) -> list[str]:
    lines = ["2026-11-26 10:00:01 ERROR request failed", "java.lang.IllegalStateException: order 42 is closed"]
    lines += [f"\tat com.example.shop.Service{i}.handle(Service{i}.java:{100 + i})" for i in range(frames - 3)]
    return lines + ["\t... 12 more"]


def test_a_200_line_stack_trace_is_one_event_at_the_offset_of_its_first_line(tmp_path, write_config, amqp_url,
                                                                               names):
    log = tmp_path / "app.log"
    before = "2026-11-26 10:00:00 INFO started"
    trace = stack_trace(200)
    assert len(trace) == 200
    append(log, [before, *trace, "2026-11-26 10:00:02 INFO next request"])
    config = shipper_config(write_config, tmp_path, [
        {"paths": [str(log)], "app": "java", "multiline": {"start_pattern": START, "flush_timeout": "0.5s"}}])
    reader = QueueReader(amqp_url, names.queue)
    try:
        with running_shipper(config):
            received = reader.wait_for(3)
            reader.settle(1.0)
    finally:
        reader.close()
    records = sorted(received.by_id.values(), key=lambda r: r["offset"])
    assert [r["offset"] for r in records] == [0, len(before) + 1, len(before) + 1 + sum(len(t) + 1 for t in trace)]
    assert records[1]["message"] == "\n".join(trace)
    assert records[1]["level"] == "error"
    assert records[2]["message"] == "2026-11-26 10:00:02 INFO next request", "the last event, by flush_timeout"


def test_an_event_longer_than_max_line_bytes_is_cut_and_flagged_and_the_next_one_is_whole(
        tmp_path, write_config, amqp_url, names):
    log = tmp_path / "app.log"
    trace = stack_trace(500)
    append(log, [*trace, "2026-11-26 10:00:02 INFO after"])
    config = shipper_config(write_config, tmp_path, [
        {"paths": [str(log)], "app": "java", "max_line_bytes": "4KiB",
         "multiline": {"start_pattern": START, "flush_timeout": "0.3s"}}])
    reader = QueueReader(amqp_url, names.queue)
    try:
        with running_shipper(config):
            received = reader.wait_for(2)
    finally:
        reader.close()
    first, after = sorted(received.by_id.values(), key=lambda r: r["offset"])
    assert len(first["message"].encode()) == 4096 and "max_line_bytes" in first["parse_error"]
    assert after["message"] == "2026-11-26 10:00:02 INFO after"
