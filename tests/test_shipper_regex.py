"""A hostile user pattern costs a line its fields, never the pipeline its CPU."""

from __future__ import annotations

import pytest

from tests.shipper_support import QueueReader, append, running_shipper, shipper_config

KIB = 1 << 10


@pytest.mark.parametrize("engine, error", [("re2", "does not match"), ("backtracking", "regex_timeout")])
def test_catastrophic_pattern_on_100_kib_of_a_then_b_finishes_and_the_line_is_stored_with_parse_error(
        tmp_path, write_config, amqp_url, names, engine, error):
    log = tmp_path / "hostile.log"
    append(log, ["a" * (100 * KIB) + "b", "aaaa"])
    config = shipper_config(write_config, tmp_path, [
        {"paths": [str(log)], "app": "re", "format": "regex", "pattern": r"^(?P<run>(a+)+)$",
         "regex_engine": engine, "regex_timeout": "0.2s"}])
    reader = QueueReader(amqp_url, names.queue)
    try:
        with running_shipper(config):
            received = reader.wait_for(2, timeout=20, message="both lines shipped (the bad one did not stall)")
    finally:
        reader.close()
    hostile, fine = sorted(received.by_id.values(), key=lambda r: r["offset"])
    assert hostile["message"] == "a" * (100 * KIB) + "b"
    assert error in hostile["parse_error"] and not hostile.get("fields")
    assert fine["fields"] == {"run": "aaaa"} and "parse_error" not in fine
