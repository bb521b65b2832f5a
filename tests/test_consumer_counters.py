"""Counters (rollups, hosts) against a real database server: a redelivered, recut,
crashed or raced batch never inflates them, and a batch costs one upsert per key."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pymongo import monitoring

from common.config import load_config
from consumer.store import Store, counters
from tests.consumer_support import assert_stored_exactly_once, make_records, message_docs
from tests.records import Record


def index_keys(collection: Any) -> dict[tuple[tuple[str, Any], ...], dict[str, Any]]:
    return {tuple((k, int(v) if isinstance(v, float) else v) for k, v in info["key"].items()): info
            for info in collection.list_indexes()}


def test_a_redelivered_message_is_stored_and_counted_once(open_store, mongo_db):
    store = open_store()
    store.init()
    records = make_records("web-01", 300)
    first = store.write([message_docs(records, "m1")])
    again = store.write([message_docs(records, "m1")])
    assert (first.inserted, first.duplicates) == (300, 0)
    assert (again.inserted, again.duplicates) == (0, 300), "duplicate keys mean already stored: success"
    assert_stored_exactly_once(mongo_db, records)


def test_records_sent_again_in_a_differently_cut_message_are_counted_by_the_first_only(open_store, mongo_db):
    """A shipper restarted before its confirm re-reads lines and cuts them into other batches."""
    store = open_store()
    store.init()
    records = make_records("web-01", 300)
    store.write([message_docs(records[:200], "a")])
    result = store.write([message_docs(records[100:], "b")])
    assert (result.inserted, result.duplicates) == (100, 100)
    store.write([message_docs(records[:200], "a"), message_docs(records[100:], "b")])  # both redelivered together
    assert_stored_exactly_once(mongo_db, records)


class Updates(monitoring.CommandListener):
    """How many upserts each update command into a counters collection carried (guard trims aside)."""

    def __init__(self) -> None:
        self.sizes: dict[str, list[int]] = {"rollups": [], "hosts": []}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update" and event.command.get("update") in self.sizes:
            upserts = [u for u in event.command["updates"] if u.get("upsert")]
            if upserts:
                self.sizes[event.command["update"]].append(len(upserts))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_a_batch_of_many_messages_costs_one_upsert_per_counter_key(mongo_db, tmp_path, write_config):
    """At a low steady rate a batch holds many small messages: its counting cost must not grow with them."""
    updates = Updates()
    store = Store(load_config(str(write_config(tmp_path, mongo={}))).mongo, listeners=[updates])
    try:
        store.init()
        records = make_records("web-01", 1000)
        messages = [message_docs(records[i:i + 50], f"m{i}") for i in range(0, 1000, 50)]
        store.write(messages)
        keys = mongo_db.rollups.count_documents({})
        assert updates.sizes == {"rollups": [keys], "hosts": [1]}, "20 messages, one upsert per key"
        assert_stored_exactly_once(mongo_db, records)
    finally:
        store.close()


def test_new_messages_batched_with_an_already_counted_one_are_counted_and_it_is_not(open_store, mongo_db):
    """A redelivered message after a consumer died, behind which new ones of the same minutes queued up."""
    store = open_store()
    store.init()
    records = make_records("web-01", 600)
    store.write([message_docs(records[:200], "old")])
    store.write([message_docs(records[200:400], "new-1"), message_docs(records[:200], "old"),
                 message_docs(records[400:], "new-2")])
    assert_stored_exactly_once(mongo_db, records)


def test_a_crash_between_insert_and_counting_is_counted_exactly_once_on_redelivery(open_store, mongo_db):
    store = open_store()
    store.init()
    records = make_records("web-01", 400)
    crashed = message_docs(records[:250], "m1")
    store.logs.insert_many(crashed.docs, ordered=False)  # step 1 done, then the consumer died
    store.write([crashed, message_docs(records[250:], "m2")])
    assert_stored_exactly_once(mongo_db, records)


def test_a_crash_halfway_through_the_counters_is_counted_exactly_once_on_redelivery(open_store, mongo_db,
                                                                                      monkeypatch):
    store = open_store()
    store.init()
    records = make_records("web-01", 1000)  # spans several minutes, so several rollup keys
    crashed = message_docs(records, "m1")
    apply_guarded = counters._apply_guarded

    def die_halfway(collection: Any, ops: list[Any]) -> None:
        if collection.name == "rollups":
            assert len(ops) > 1
            apply_guarded(collection, ops[:len(ops) // 2])
        raise KeyboardInterrupt("consumer killed halfway through the counters")

    monkeypatch.setattr(counters, "_apply_guarded", die_halfway)
    with pytest.raises(KeyboardInterrupt):
        store.write([crashed])
    monkeypatch.undo()
    assert 0 < sum(r["n"] for r in mongo_db.rollups.find()) < len(records)
    store.write([crashed])
    store.write([crashed])
    assert_stored_exactly_once(mongo_db, records)


def test_consumers_racing_to_create_the_same_counters_count_every_message_once(open_store, mongo_db):
    """Upserts of a brand-new key from several consumers at once: one creates it, the
    others get a duplicate key that does not mean "already counted"."""
    workers = 6
    stores = [open_store() for _ in range(workers)]
    stores[0].init()
    for round_ in range(3):  # each round counts into minutes no key exists for yet
        records_by_worker = [make_records(f"web-{w % 2}", 120, first=round_ * 6000 + w * 120)
                             for w in range(workers)]
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def count(w: int, round_: int = round_, records_by_worker: list[list[Record]] = records_by_worker,
                  barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                msg = message_docs(records_by_worker[w], f"r{round_}-w{w}")
                barrier.wait()
                stores[w]._apply_counts([msg], {msg.id: msg.docs})
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=count, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    total = workers * 120 * 3
    assert sum(r["n"] for r in mongo_db.rollups.find()) == total
    assert sum(h["records"] for h in mongo_db.hosts.find()) == total


def test_a_duplicate_key_from_a_creation_race_is_told_apart_from_already_counted(open_store, mongo_db,
                                                                                    monkeypatch):
    """The race itself needs a server that runs upserts concurrently (SecantusDB serializes
    them): here every upsert's first answer is the ambiguous duplicate key."""
    store = open_store()
    store.init()
    counted = message_docs(make_records("web-01", 200), "m1")
    late = message_docs(make_records("web-01", 200, first=200), "m2")
    store.write([counted])
    upsert_duplicates = counters._upsert_duplicates
    answers: list[str] = []

    def race_first(collection: Any, updates: list[Any]) -> list[int]:
        # The first two answers per collection (all messages per key, then message by message):
        # as if another consumer had just created every key.
        if answers.count(collection.name) < 2:
            answers.append(collection.name)
            return list(range(len(updates)))
        return upsert_duplicates(collection, updates)

    monkeypatch.setattr(counters, "_upsert_duplicates", race_first)
    store._apply_counts([counted, late], {"m1": counted.docs, "m2": late.docs})
    assert answers == ["rollups", "rollups", "hosts", "hosts"], "the race was simulated"
    monkeypatch.undo()
    store.logs.insert_many(late.docs)
    assert_stored_exactly_once(mongo_db, make_records("web-01", 400))


def test_a_host_written_before_the_list_cap_keeps_its_counts_and_its_lists_are_cut_to_the_cap(open_store,
                                                                                              mongo_db):
    """An upgrade: a `hosts` document as older consumers wrote it (`$inc`/`$addToSet`, lists
    without a cap) is counted into, not doubled, and its too-long list is cut to the cap."""
    store = open_store()
    store.init()
    counted, later = make_records("web-01", 100), make_records("web-01", 50, first=100)
    store.write([message_docs(counted, "m1")])
    sources = [f"/var/log/old/{n}.log" for n in range(counters.HOST_LIST_KEEP + 50)]
    mongo_db.hosts.update_one({"_id": "web-01"}, {"$addToSet": {"sources": {"$each": sources}}})
    store.write([message_docs(later, "m2"), message_docs(counted, "m1")])  # m1 redelivered
    assert_stored_exactly_once(mongo_db, counted + later)
    host = mongo_db.hosts.find_one({"_id": "web-01"})
    assert len(host["sources"]) == counters.HOST_LIST_KEEP and host["sources"][0] == "/var/log/app.log"
