"""The journald input through real processes: systemd-journal-remote writing a journal
directory, `opslog ship` reading it with journalctl, RabbitMQ, and (for "stored") `opslog
consume` and the database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from common.localservices import free_port
from tests.helpers import run_opslog, stop, wait_until
from tests.journal_support import JournalFeeder
from tests.shipper_support import QueueReader, append, kill9, metric, numbered, running_shipper, shipper_config
from tests.test_coverage_pipeline import client_for, files_of

MIB = 1 << 20


def entries(prefix: str, start: int, count: int, **fields: str) -> list[dict[str, str | bytes]]:
    return [{"MESSAGE": f"{prefix} {i:06d}", "PRIORITY": str(i % 8), "SYSLOG_IDENTIFIER": "worker",
             "_SYSTEMD_UNIT": "worker.service", "_PID": "4242", "_COMM": "worker", "_HOSTNAME": "node-7",
             "_TRANSPORT": "journal", **fields} for i in range(start, start + count)]


def registry_cursor(tmp_path: Path, key: str) -> str | None:
    path = tmp_path / "shipper-state" / "registry.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data.get("journals", {}).get(key, {}).get("cursor")


def children(pid: int, name: str) -> list[int]:
    """The child processes of `pid` running `name`."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
            for child in fh.read().split():
                try:
                    with open(f"/proc/{child}/comm", encoding="ascii") as comm:
                        if comm.read().strip() == name:
                            found.append(int(child))
                except OSError:
                    continue
    return found


@pytest.fixture
def feeder(tmp_path: Path) -> Iterator[JournalFeeder]:
    """The journal directory `tmp_path/journal`, written by one journal-remote process, closed after the test."""
    journal_feeder = JournalFeeder(tmp_path / "journal")
    yield journal_feeder
    journal_feeder.close()


@pytest.fixture
def reader(amqp_url: str, names) -> Iterator[QueueReader]:
    """What reaches the test's queue (no consumer): closed after the test."""
    queue_reader = QueueReader(amqp_url, names.queue)
    yield queue_reader
    queue_reader.close()


def test_journal_entries_written_while_the_shipper_is_killed_are_stored_exactly_once(
        tmp_path, write_config, mongo_db, feeder):
    journal = feeder.directory
    config = shipper_config(write_config, tmp_path, [{"type": "journald", "directory": str(journal)}],
                            batch_max_records=200, heartbeat_interval="0.5s")
    written: list[dict[str, str | bytes]] = []
    halt = threading.Event()

    def keep_writing() -> None:
        while not halt.is_set() and len(written) < 6000:
            burst = entries("entry", len(written), 100)
            feeder.write(burst)
            written.extend(burst)
            time.sleep(0.02)

    writer = threading.Thread(target=keep_writing, daemon=True)
    consumer = run_opslog("consume", config=config)
    shipper = run_opslog("ship", config=config)
    try:
        writer.start()
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 1000, timeout=60, message="1000 entries stored")
        kill9(shipper)  # mid-stream: batches in flight, the registry behind what was confirmed
        time.sleep(0.5)  # the journal grows while no shipper runs
        shipper = run_opslog("ship", config=config)
        writer.join(120)
        assert len(written) == 6000
        wait_until(lambda: mongo_db.logs.count_documents({}) >= 6000, timeout=120, message="6000 entries stored")
        time.sleep(1.0)  # anything sent twice would have arrived by now
        web = client_for(config, mongo_db)
        settled = wait_until(lambda: journal_report(web, confirmed=6001), timeout=30,
                             message="a heartbeat after the last entry")
    finally:
        halt.set()
        feeder.close()
        assert stop(shipper) == 0, shipper.output()
        assert stop(consumer) == 0, consumer.output()

    docs = list(mongo_db.logs.find({}, {"message": 1, "offset": 1}))
    assert len(docs) == 6000, f"{len(docs)} documents for 6000 entries"
    assert sorted(d["message"] for d in docs) == sorted(str(e["MESSAGE"]) for e in written)
    assert sorted(d["offset"] for d in docs) == list(range(1, 6001)), "offset is the entry's seqnum"
    assert registry_cursor(tmp_path, f"journal:{journal}") is not None, "the confirmed cursor is saved"

    # coverage, in seqnums: the whole journal stored once, as one range, through the kill
    assert (settled["size"], settled["confirmed"], settled["lag_bytes"]) == (6001, 6001, 0)
    report = journal_report(web)
    assert report["file"].startswith("journal:") and report["source"] == f"journal:{journal}"
    assert (report["first_offset"], report["stored_through"], report["gaps"]) == (1, 6001, [])
    mongo_db.logs.delete_many({"offset": {"$in": [100, 101, 2000]}})
    verified = journal_report(web, verify=True)
    assert verified["gaps"] == [[100, 102], [2000, 2001]] and verified["gap_causes"] == ["deleted", "deleted"]
    assert verified["records"] == 5997


def journal_report(web, verify: bool = False, confirmed: int | None = None) -> dict | None:
    """The host's one journal input as `GET /api/hosts/<host>/files` (or `/verify`) reports it;
    with `confirmed`, None until its heartbeat says the broker confirmed that far and all of it
    is stored (no lag)."""
    files = [f for f in files_of(web, verify=verify) if f["file"].startswith("journal:")]
    assert len(files) <= 1, files
    if confirmed is not None:
        return files[0] if files and files[0]["confirmed"] == confirmed and files[0]["lag_bytes"] == 0 else None
    assert files, "no coverage for the journal input"
    return files[0]


def test_journal_coverage_counts_what_the_filters_passed_over_and_names_a_vacuumed_span(
        tmp_path, write_config, mongo_db, feeder):
    journal = feeder.directory
    feeder.write([entries("mixed", i, 1, _SYSTEMD_UNIT="a.service" if i % 2 == 0 else "b.service")[0]
                  for i in range(10)])  # seqnums 1..10: a.service at the odd ones, b.service at the even
    config = shipper_config(write_config, tmp_path,
                            [{"type": "journald", "directory": str(journal), "units": ["a.service"]}],
                            heartbeat_interval="0.5s")
    web = client_for(config, mongo_db)
    consumer = run_opslog("consume", config=config)
    try:
        with running_shipper(config):
            report = wait_until(lambda: journal_report(web, confirmed=10), timeout=60,
                                message="a.service's 5 entries stored and confirmed")
        assert mongo_db.logs.count_documents({}) == 5
        assert (report["first_offset"], report["stored_through"], report["gaps"]) == (1, 10, []), \
            "b.service's entries between a.service's are covered: one range, no gap"

        feeder.write(entries("vacuumed", 0, 4, _SYSTEMD_UNIT="a.service"))  # 11..14, never read
        feeder.rotate("rotation")  # 15, the last entry of the file about to be vacuumed
        feeder.write(entries("after", 0, 5, _SYSTEMD_UNIT="a.service"))  # 16..20
        feeder.wait_stored()
        run_quiet(["journalctl", f"--directory={journal}", "--vacuum-files=1"])
        with running_shipper(config):
            report = wait_until(lambda: journal_report(web, confirmed=21), timeout=60,
                                message="the entries after the vacuum stored and confirmed")
    finally:
        feeder.close()
        assert stop(consumer) == 0, consumer.output()
    assert mongo_db.logs.count_documents({}) == 10
    assert report["gaps"] == [[10, 16]] and report["gap_causes"] == ["vacuumed"], report
    assert (report["first_offset"], report["stored_end"]) == (1, 21)
    verified = journal_report(web, verify=True)
    assert verified["gaps"] == [[10, 16]] and verified["gap_causes"] == ["vacuumed"]


def test_a_journal_entry_becomes_a_record_with_its_time_level_app_unit_and_trusted_fields(
        tmp_path, write_config, mongo_db, feeder):
    journal = feeder.directory
    huge = "".join(chr(ord("a") + i % 26) for i in range(MIB))  # a 1 MiB MESSAGE
    feeder.write([
        {"MESSAGE": "disk almost full", "PRIORITY": "4", "SYSLOG_IDENTIFIER": "smartd",
         "_SYSTEMD_UNIT": "smartd.service", "_PID": "812", "_UID": "0", "_COMM": "smartd", "_HOSTNAME": "node-7",
         "CONTAINER_NAME": "sidecar", "CODE_FILE": "smartd.c"},
        {"MESSAGE": b"binary \x00\x01 payload \xff\xfe end", "PRIORITY": "3", "_SYSTEMD_UNIT": "cron.service"},
        {"MESSAGE": huge, "PRIORITY": "6", "SYSLOG_IDENTIFIER": "bigapp"},
        {"MESSAGE": "a line\nand another", "PRIORITY": "0", "_COMM": "kthreadd"},
        {"MESSAGE": "x" * (MIB + 10), "PRIORITY": "7", "SYSLOG_IDENTIFIER": "bigger"},
    ])
    feeder.close()
    config = shipper_config(write_config, tmp_path, [{"type": "journald", "directory": str(journal)}])
    consumer = run_opslog("consume", config=config)
    try:
        with running_shipper(config):
            wait_until(lambda: mongo_db.logs.count_documents({}) >= 5, timeout=60, message="5 entries stored")
    finally:
        assert stop(consumer) == 0, consumer.output()

    smartd = mongo_db.logs.find_one({"message": "disk almost full"})
    assert smartd["level"] == "warning" and smartd["app"] == "smartd" and smartd["source"] == "journal:smartd.service"
    assert smartd["host"] == "test-host" and smartd["offset"] == 1
    assert abs(smartd["ts"].timestamp() - time.time()) < 600, "the entry's __REALTIME_TIMESTAMP"
    assert smartd["fields"] == {"_SYSTEMD_UNIT": "smartd.service", "_PID": 812, "_UID": 0, "_COMM": "smartd",
                                "_HOSTNAME": "node-7", "_BOOT_ID": "0123456789abcdef0123456789abcdef",
                                "CONTAINER_NAME": "sidecar"}, "trusted fields and CONTAINER_NAME, not CODE_FILE"
    binary = mongo_db.logs.find_one({"offset": 2})
    assert binary["message"] == "binary \x00\x01 payload \ufffd\ufffd end", "bytes decoded with replacement"
    assert binary["level"] == "error" and binary["app"] == "cron.service" and binary["source"] == "journal:cron.service"
    big = mongo_db.logs.find_one({"offset": 3})
    assert big["message"] == huge and "parse_error" not in big and big["level"] == "info" and big["source"] == "journal"
    kernel = mongo_db.logs.find_one({"offset": 4})
    assert kernel["message"] == "a line\nand another" and kernel["level"] == "critical" and kernel["app"] == "kthreadd"
    cut = mongo_db.logs.find_one({"offset": 5})
    assert cut["message"] == "x" * MIB and "max_line_bytes" in cut["parse_error"] and cut["level"] == "debug"


def test_a_vacuumed_cursor_is_logged_counted_and_reading_resumes_at_the_oldest_entry_left(
        tmp_path, write_config, feeder, reader):
    journal = feeder.directory
    listen = f"127.0.0.1:{free_port()}"
    config = shipper_config(write_config, tmp_path, [{"type": "journald", "directory": str(journal)}],
                            metrics_listen=listen)
    feeder.write(entries("before", 0, 10))  # seqnums 1..10
    with running_shipper(config):
        reader.wait_for(10)
    assert registry_cursor(tmp_path, f"journal:{journal}").split(";")[1] == "i=a", "confirmed up to seqnum 10"
    feeder.write(entries("vacuumed", 0, 4))  # 11..14, never read
    feeder.rotate("rotation")  # 15, the last entry of the file about to be vacuumed
    feeder.write(entries("after", 0, 5))  # 16..20, in the new file
    feeder.wait_stored()
    assert len(feeder.files()) == 2
    vacuum = run_quiet(["journalctl", f"--directory={journal}", "--vacuum-files=1"])
    assert "Deleted archived journal" in vacuum, vacuum
    assert len(feeder.files()) == 1
    with running_shipper(config) as shipper:
        received = reader.wait_for(15, message="the 5 entries after the vacuum")
        wait_until(lambda: metric(listen, "opslog_shipper_journal_skipped_entries") == 5,
                   message="the 5 vacuumed entries counted")
        reader.settle(0.5)
    assert sorted(m for m in received.messages() if not m.startswith("before")) == \
        [f"after {i:06d}" for i in range(5)]
    assert len(received.by_id) == 15
    assert "no longer in the journal (vacuumed)" in shipper.output()
    assert "5 entries skipped" in shipper.output()


def run_quiet(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def test_units_identifiers_priority_and_matches_choose_the_entries_each_input_reads(
        tmp_path, write_config, feeder, reader):
    journal = feeder.directory
    feeder.write([
        {"MESSAGE": "nginx crit", "PRIORITY": "2", "_SYSTEMD_UNIT": "nginx.service", "SYSLOG_IDENTIFIER": "nginx"},
        {"MESSAGE": "nginx warning", "PRIORITY": "4", "_SYSTEMD_UNIT": "nginx.service", "SYSLOG_IDENTIFIER": "nginx"},
        {"MESSAGE": "nginx info", "PRIORITY": "6", "_SYSTEMD_UNIT": "nginx.service", "SYSLOG_IDENTIFIER": "nginx"},
        {"MESSAGE": "cron job", "PRIORITY": "6", "_SYSTEMD_UNIT": "cron.service", "SYSLOG_IDENTIFIER": "CRON"},
        {"MESSAGE": "web container", "PRIORITY": "6", "CONTAINER_NAME": "web", "_TRANSPORT": "journal"},
        {"MESSAGE": "db container", "PRIORITY": "6", "CONTAINER_NAME": "db", "_TRANSPORT": "journal"},
        {"MESSAGE": "sshd error", "PRIORITY": "3", "_SYSTEMD_UNIT": "ssh.service", "SYSLOG_IDENTIFIER": "sshd"},
    ])
    config = shipper_config(write_config, tmp_path, [
        {"type": "journald", "directory": str(journal), "units": ["nginx.service"], "priority": "warning"},
        {"type": "journald", "directory": str(journal), "identifiers": ["CRON"], "app": "cron"},
        {"type": "journald", "directory": str(journal), "matches": ["CONTAINER_NAME=web"]},
    ])
    with running_shipper(config):
        received = reader.wait_for(4)
        feeder.write([{"MESSAGE": "nginx alert later", "PRIORITY": "1", "_SYSTEMD_UNIT": "nginx.service"},
                      {"MESSAGE": "nginx debug later", "PRIORITY": "7", "_SYSTEMD_UNIT": "nginx.service"}])
        received = reader.wait_for(5)
        reader.settle(0.5)
    got = {r["message"]: (r["app"], r["source"]) for r in received.by_id.values()}
    assert got == {"nginx crit": ("nginx", "journal:nginx.service"),
                   "nginx warning": ("nginx", "journal:nginx.service"),
                   "cron job": ("cron", "journal:cron.service"),
                   "web container": ("journal", "journal"),
                   "nginx alert later": ("nginx.service", "journal:nginx.service")}
    state = json.loads((tmp_path / "shipper-state" / "registry.json").read_text())["journals"]
    assert sorted(state) == [f"journal:{journal}", f"journal:{journal}#1", f"journal:{journal}#2"]


def test_start_at_end_reads_only_what_comes_after_the_first_start_even_across_a_restart(
        tmp_path, write_config, feeder, reader):
    journal = feeder.directory
    feeder.write(entries("old", 0, 50))
    config = shipper_config(write_config, tmp_path, [{"type": "journald", "directory": str(journal),
                                                      "start_at": "end"}])
    with running_shipper(config):
        wait_until(lambda: registry_cursor(tmp_path, f"journal:{journal}") is not None,
                   message="the journal's end saved as the start")
    with running_shipper(config):  # not a first start: from the saved position, not the journal's start
        feeder.write(entries("new", 0, 20))
        received = reader.wait_for(20)
        reader.settle(0.5)
    assert sorted(received.messages()) == [f"new {i:06d}" for i in range(20)]


def test_a_dying_journalctl_is_restarted_and_never_holds_up_the_other_inputs(
        tmp_path, write_config, feeder, reader):
    journal = feeder.directory
    log = tmp_path / "app.log"
    log.write_text("")
    config = shipper_config(write_config, tmp_path, [
        {"type": "journald", "directory": str(tmp_path / "no-such-journal")},  # journalctl fails at once, again
        {"type": "journald", "directory": str(journal)},
        {"paths": [str(log)], "app": "files"}])
    with running_shipper(config) as shipper:
        feeder.write(entries("first", 0, 100))
        append(log, numbered("file", 0, 100))
        reader.wait_for(200)
        for pid in children(shipper.pid, "journalctl"):
            os.kill(pid, signal.SIGKILL)
        append(log, numbered("file", 100, 100))
        reader.wait_for(300, message="file lines while journalctl is down")
        feeder.write(entries("second", 0, 100))
        received = reader.wait_for(400, message="entries written after journalctl was killed")
        reader.settle(0.5)
    assert len(received.by_id) == 400
    assert sorted(m for m in received.messages() if m.startswith("second")) == \
        [f"second {i:06d}" for i in range(100)]
    assert "journalctl stopped" in shipper.output()


def test_sighup_applies_a_journald_input_s_new_filters_from_its_confirmed_cursor(
        tmp_path, write_config, feeder, reader):
    journal = feeder.directory
    config = shipper_config(write_config, tmp_path, [{"type": "journald", "directory": str(journal),
                                                      "app": "before"}])
    with running_shipper(config) as shipper:
        feeder.write(entries("one", 0, 30))
        reader.wait_for(30)
        data = yaml.safe_load(config.read_text())
        data["shipper"]["inputs"] = [{"type": "journald", "directory": str(journal), "app": "after",
                                      "priority": "warning"}]
        config.write_text(yaml.safe_dump(data))
        shipper.send_signal(signal.SIGHUP)
        wait_until(lambda: "SIGHUP: reloaded" in shipper.output(), message="config reloaded")
        feeder.write(entries("two", 0, 30))  # PRIORITY i % 8: 0..4 are warning or above
        received = reader.wait_for(30 + 19)
        reader.settle(0.5)
    apps = {r["message"]: r["app"] for r in received.by_id.values()}
    assert {apps[f"one {i:06d}"] for i in range(30)} == {"before"}
    assert sorted(m for m in apps if m.startswith("two")) == [f"two {i:06d}" for i in range(30) if i % 8 <= 4]
    assert {apps[m] for m in apps if m.startswith("two")} == {"after"}
    assert max(received.sent.values()) == 1, "the cursor was kept: nothing read twice"

