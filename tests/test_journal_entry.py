"""A journal entry (journalctl's JSON) into a record: the mapping of issue 17, and its bounds."""

from __future__ import annotations

import pytest

from common.config import parse_config
from common.fields import MAX_BYTES
from shipper.journal_entry import FIELD_VALUE_MAX, Cursor, entry_maker

CURSOR = ("s=0e062bd169124f9cb4cdb00db5109f71;i=2aa65;b=0123456789abcdef0123456789abcdef;m=2aa65;"
          "t=66178dbea7733;x=99183f9ba91edb49")


def make(app: str | None = None, max_line_bytes: str = "1MiB", key: str = "journal:system",
         previous: dict[str, int] | None = None):
    spec = {"type": "journald", "max_line_bytes": max_line_bytes, **({"app": app} if app else {})}
    return entry_maker("web-01", parse_config({"shipper": {"inputs": [spec]}}).shipper.inputs[0], key,
                       {} if previous is None else previous)


def entry(**fields):
    return {"__CURSOR": CURSOR, "__REALTIME_TIMESTAMP": "1796021520984046", "__MONOTONIC_TIMESTAMP": "1",
            "_BOOT_ID": "0123456789abcdef0123456789abcdef", **fields}


@pytest.mark.parametrize("priority, level", [("0", "critical"), ("1", "critical"), ("2", "critical"),
                                             ("3", "error"), ("4", "warning"), ("5", "info"), ("6", "info"),
                                             ("7", "debug"), ("9", None), ("loud", None)])
def test_priority_becomes_the_level(priority, level):
    assert make()(entry(MESSAGE="m", PRIORITY=priority)).row[4] == level


def test_the_time_seqnum_app_source_and_trusted_fields_are_mapped():
    e = make()(entry(MESSAGE="started", SYSLOG_IDENTIFIER="sshd", _SYSTEMD_UNIT="ssh.service", _PID="812",
                     _COMM="sshd", _HOSTNAME="node-7", CONTAINER_NAME="web", CODE_LINE="12"))
    record_id, offset, ts, message, level, fields, error = e.row
    assert (offset, ts, message, level, error) == (0x2AA65, 1796021520.984046, "started", None, None)
    assert e.seqnum == 0x2AA65 and e.cursor == CURSOR
    assert (e.app, e.source) == ("sshd", "journal:ssh.service")
    assert fields == {"_BOOT_ID": "0123456789abcdef0123456789abcdef", "_SYSTEMD_UNIT": "ssh.service", "_PID": 812,
                      "_COMM": "sshd", "_HOSTNAME": "node-7", "CONTAINER_NAME": "web"}


def test_the_app_is_the_identifier_else_the_unit_else_the_command_unless_the_input_names_one():
    assert make()(entry(_SYSTEMD_UNIT="cron.service")).app == "cron.service"
    assert make()(entry(_COMM="kworker")).app == "kworker"
    assert make()(entry()).app == "journal" and make()(entry()).source == "journal"
    assert make(app="system")(entry(SYSLOG_IDENTIFIER="sshd")).app == "system"


def test_byte_array_and_repeated_messages_are_decoded():
    binary = list(b"bin\x00ary \xff end")
    assert make()(entry(MESSAGE=binary)).row[3] == "bin\x00ary \ufffd end"
    assert make()(entry(MESSAGE=["first", list(b"second")])).row[3] == "first\nsecond"
    assert make()(entry(MESSAGE=None)).row[3] == "", "journalctl without --all writes big fields as null"


def test_a_message_over_max_line_bytes_is_cut_and_flagged_as_a_long_line_is():
    e = make(max_line_bytes="1KiB")(entry(MESSAGE="é" * 1000))
    assert e.row[3] == "é" * 512 and "max_line_bytes (1024)" in e.row[6]
    e = make(max_line_bytes="1KiB")(entry(MESSAGE=list(b"x" * 2000)))
    assert e.row[3] == "x" * 1024 and "max_line_bytes" in e.row[6]
    assert make()(entry(MESSAGE="y" * (1 << 20))).row[6] is None, "1 MiB fits the default"


def test_fields_are_bounded_like_parsed_fields():
    e = make()(entry(MESSAGE="m", _CMDLINE="a" * (FIELD_VALUE_MAX + 5)))
    assert len(e.row[5]["_CMDLINE"]) == FIELD_VALUE_MAX and "_CMDLINE cut" in e.row[6]
    many = {f"_F{i}": "v" * (FIELD_VALUE_MAX - 1) for i in range(6)}  # over MAX_BYTES together
    e = make()(entry(MESSAGE="m", **many))
    assert list(e.row[5]) == ["_json"] and len(e.row[5]["_json"]) > MAX_BYTES and "fields bounded" in e.row[6]


def test_the_same_entry_read_twice_gets_the_same_id_and_another_entry_another():
    one = make()(entry(MESSAGE="m", _PID="1"))
    fields_in_another_order = {"_PID": "1", "MESSAGE": "m", **entry()}
    assert make()(fields_in_another_order).row[0] == one.row[0]
    for other in (CURSOR.replace("i=2aa65", "i=2aa66"), CURSOR.replace("s=0e06", "s=0f06"),
                  CURSOR.replace("x=9918", "x=9919")):
        assert make()({**entry(MESSAGE="m"), "__CURSOR": other}).row[0] != one.row[0]
    other_host = entry_maker("web-02", parse_config({"shipper": {"inputs": [{"type": "journald"}]}})
                             .shipper.inputs[0], "journal:system", {})
    assert other_host(entry(MESSAGE="m")).row[0] != one.row[0]


def test_an_entry_without_a_cursor_makes_no_record_and_odd_cursors_are_read():
    assert make()({"MESSAGE": "m"}) is None
    assert Cursor.parse("i=10;s=abc") == Cursor("abc", 16, "b=;m=;t=;x=")
    assert Cursor.parse("s=abc;i=zz;b=;m=;t=;x=") is None


def at(seqnum: int, seqnum_id: str = "0e062bd169124f9cb4cdb00db5109f71"):
    return {**entry(MESSAGE=f"m{seqnum}"), "__CURSOR": CURSOR.replace("i=2aa65", f"i={seqnum:x}").replace(
        "s=0e062bd169124f9cb4cdb00db5109f71", f"s={seqnum_id}")}


def test_each_entry_closes_the_seqnums_since_the_one_its_input_read_before_it():
    previous = {"0e062bd169124f9cb4cdb00db5109f71": 10}  # where the reader started: after seqnum 10
    maker = make(previous=previous)
    spans = [(e.seqnum, e.span) for e in map(maker, [at(11), at(15), at(16), at(40)])]
    assert spans == [(11, 1), (15, 4), (16, 1), (40, 24)], "entries its filters passed over are covered"
    assert previous == {"0e062bd169124f9cb4cdb00db5109f71": 40}
    other_journal = maker(at(7, "1f062bd169124f9cb4cdb00db5109f71"))
    assert other_journal.span == 1 and other_journal.file != maker(at(41)).file, "another seqnum id: its own history"
    assert make()(at(500)).span == 1, "nothing read before: the entry closes its own seqnum only"


def test_the_coverage_identity_is_the_journal_as_one_input_reads_it():
    one = make(key="journal:system")(at(1)).file
    assert one.startswith("journal:0e062bd169124f9cb4cdb00db5109f71:") and len(one) <= 64
    assert make(key="journal:system")(at(2)).file == one
    assert make(key="journal:system#1")(at(1)).file != one, "another input with other filters"
