"""Lines as files really hold them: huge, broken, Windows-ended, in legacy encodings, unfinished."""

from __future__ import annotations

import pytest

from tests.helpers import run_opslog, stop, wait_until
from tests.shipper_support import QueueReader, append, line_offsets, running_shipper, shipper_config

MIB = 1 << 20


@pytest.fixture
def reader(amqp_url, names):
    queue_reader = QueueReader(amqp_url, names.queue)
    yield queue_reader
    queue_reader.close()


def test_a_5_mib_line_is_truncated_to_max_line_bytes_flagged_and_the_file_keeps_being_read(
        tmp_path, write_config, reader):
    log = tmp_path / "big.log"
    log.write_bytes(b"before\n" + b"x" * (5 * MIB) + b"\nafter\n")
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "big"}])
    with running_shipper(config):
        received = reader.wait_for(3)
        append(log, ["later"])
        received = reader.wait_for(4)
    by_offset = {r["offset"]: r for r in received.by_id.values()}
    assert sorted(by_offset) == [0, 7, 7 + 5 * MIB + 1, 7 + 5 * MIB + 7]
    huge = by_offset[7]
    assert huge["message"] == "x" * MIB, "the head of the line, max_line_bytes (1 MiB by default) of it"
    assert "max_line_bytes" in huge["parse_error"]
    assert [by_offset[o]["message"] for o in sorted(by_offset) if o != 7] == ["before", "after", "later"]


def test_invalid_utf8_and_nul_bytes_are_stored_with_replacement_and_reading_goes_on(tmp_path, write_config,
                                                                                   mongo_db):
    log = tmp_path / "binary.log"
    lines = [b"ok one", b"bad \xff\xfe utf-8 \xc3\x28 here", b"nul \x00 inside \x00", b"ok two"]
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "bin"}])
    consumer = run_opslog("consume", config=config)
    try:
        with running_shipper(config):
            wait_until(lambda: mongo_db.logs.count_documents({}) >= 4, timeout=60, message="4 lines stored")
    finally:
        assert stop(consumer) == 0, consumer.output()
    stored = {d["offset"]: d["message"] for d in mongo_db.logs.find()}
    expected = {offset: raw.decode("utf-8", "replace") for offset, raw in line_offsets(log.read_bytes()).items()}
    assert stored == expected
    assert expected[7] == "bad \ufffd\ufffd utf-8 \ufffd( here" and "\x00" in expected[28]


def test_crlf_line_endings_are_stripped_and_offsets_count_the_carriage_return(tmp_path, write_config, reader):
    log = tmp_path / "windows.log"
    append(log, ["first", "second", "third"], newline="\r\n")
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "win"}])
    with running_shipper(config):
        received = reader.wait_for(3)
    assert sorted((r["offset"], r["message"]) for r in received.by_id.values()) == [
        (0, "first"), (7, "second"), (15, "third")]


@pytest.mark.parametrize("encoding, text", [("gbk", "用户登录成功 user=张三"),
                                            ("latin-1", "Überweisung bestätigt: 42 £")])
def test_each_input_decodes_its_own_encoding(tmp_path, write_config, reader, encoding, text):
    log = tmp_path / f"{encoding}.log"
    append(log, [text, "plain ascii"], encoding=encoding)
    utf8 = tmp_path / "utf8.log"
    append(utf8, [text])
    config = shipper_config(write_config, tmp_path, [
        {"paths": [str(log)], "app": "legacy", "encoding": encoding},
        {"paths": [str(utf8)], "app": "modern"}])
    with running_shipper(config):
        received = reader.wait_for(3)
    by_app = sorted((r["app"], r["message"]) for r in received.by_id.values())
    assert by_app == sorted([("legacy", text), ("legacy", "plain ascii"), ("modern", text)])


def test_a_last_line_without_newline_is_held_until_it_completes(tmp_path, write_config, reader):
    log = tmp_path / "partial.log"
    log.write_bytes(b"complete\nhalf a li")
    config = shipper_config(write_config, tmp_path, [{"paths": [str(log)], "app": "p"}])
    with running_shipper(config):
        reader.wait_for(1)
        reader.settle(1.0)
        assert reader.received.messages() == ["complete"], "the unfinished line is not shipped in pieces"
        with open(log, "ab") as fh:
            fh.write(b"ne, now finished\n")
        received = reader.wait_for(2)
    assert sorted((r["offset"], r["message"]) for r in received.by_id.values()) == [
        (0, "complete"), (9, "half a line, now finished")]
