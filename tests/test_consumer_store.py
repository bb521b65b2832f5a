"""The store against a real database server: indexes, retention, duplicates as
success, and counters that a redelivered or crashed batch never inflates."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import monitoring

from common.config import load_config
from common.record import Record, to_document
from consumer import store as store_module
from consumer.store import Message, Store
from tests.consumer_support import assert_stored_exactly_once, make_records


@pytest.fixture
def open_store(tmp_path: Path, write_config: Callable[..., Path]) -> Iterator[Callable[..., Store]]:
    """`open_store(**mongo_keys)`: a Store on the test's database, closed afterwards."""
    stores: list[Store] = []

    def make(**mongo: Any) -> Store:
        config = load_config(str(write_config(tmp_path / f"store-{len(stores)}", mongo=mongo)))
        stores.append(Store(config.mongo))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def message(records: list[Record], message_id: str) -> Message:
    """The documents of one AMQP message, as the consumer decodes them."""
    return Message(message_id, [{**to_document(r.to_wire()), "batch": message_id} for r in records])


def index_keys(collection: Any) -> dict[tuple[tuple[str, Any], ...], dict[str, Any]]:
    return {tuple((k, int(v) if isinstance(v, float) else v) for k, v in info["key"].items()): info
            for info in collection.list_indexes()}


def test_indexes_for_the_ui_context_and_retention_are_created_at_start(open_store, mongo_db):
    store = open_store(retention="30d")
    store.init()
    store.init()  # a second worker starting, or a restart: nothing changes, nothing fails
    keys = index_keys(mongo_db.logs)
    for wanted in ((("ts", -1),), (("host", 1), ("ts", -1)), (("app", 1), ("ts", -1)), (("level", 1), ("ts", -1)),
                   (("host", 1), ("source", 1), ("offset", 1))):
        assert wanted in keys, f"logs index {wanted} missing"
    assert keys[(("received_at", 1),)]["expireAfterSeconds"] == 30 * 86400
    assert index_keys(mongo_db.rollups)[(("u", 1),)]["expireAfterSeconds"] == 30 * 86400, \
        "rollups expire with the logs they count"


def test_a_changed_retention_is_applied_and_a_removed_one_stops_expiry(open_store, mongo_db):
    open_store(retention="30d").init()
    open_store(retention="7d").init()
    assert index_keys(mongo_db.logs)[(("received_at", 1),)]["expireAfterSeconds"] == 7 * 86400
    open_store().init()
    assert (("received_at", 1),) not in index_keys(mongo_db.logs), "without retention, records are kept"
    assert "expireAfterSeconds" not in index_keys(mongo_db.rollups)[(("u", 1),)]


def test_indexes_someone_else_created_under_other_names_are_reused(open_store, mongo_db):
    mongo_db.logs.create_index([("ts", -1)], name="made_by_hand")
    open_store().init()
    assert [info["name"] for k, info in index_keys(mongo_db.logs).items() if k == (("ts", -1),)] == ["made_by_hand"]


def test_full_text_search_is_detected_once_at_start_from_what_the_server_supports(open_store, mongo_db):
    """A `$text` index where the server has one (MongoDB); SecantusDB has none, so the UI
    falls back to a bounded substring search. Either way starting again changes nothing."""
    first, again = open_store(), open_store()
    first.init()
    again.init()
    text_indexes = [info for info in mongo_db.logs.index_information().values()
                    if any(v == "text" for _, v in info["key"])]
    assert first.text_search == again.text_search == bool(text_indexes)
    assert len(text_indexes) <= 1


def test_a_redelivered_message_is_stored_and_counted_once(open_store, mongo_db):
    store = open_store()
    store.init()
    records = make_records("web-01", 300)
    first = store.write([message(records, "m1")])
    again = store.write([message(records, "m1")])
    assert (first.inserted, first.duplicates) == (300, 0)
    assert (again.inserted, again.duplicates) == (0, 300), "duplicate keys mean already stored: success"
    assert_stored_exactly_once(mongo_db, records)


def test_records_sent_again_in_a_differently_cut_message_are_counted_by_the_first_only(open_store, mongo_db):
    """A shipper restarted before its confirm re-reads lines and cuts them into other batches."""
    store = open_store()
    store.init()
    records = make_records("web-01", 300)
    store.write([message(records[:200], "a")])
    result = store.write([message(records[100:], "b")])
    assert (result.inserted, result.duplicates) == (100, 100)
    store.write([message(records[:200], "a"), message(records[100:], "b")])  # both redelivered together
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
        messages = [message(records[i:i + 50], f"m{i}") for i in range(0, 1000, 50)]
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
    store.write([message(records[:200], "old")])
    store.write([message(records[200:400], "new-1"), message(records[:200], "old"),
                 message(records[400:], "new-2")])
    assert_stored_exactly_once(mongo_db, records)


def test_a_crash_between_insert_and_counting_is_counted_exactly_once_on_redelivery(open_store, mongo_db):
    store = open_store()
    store.init()
    records = make_records("web-01", 400)
    crashed = message(records[:250], "m1")
    store.logs.insert_many(crashed.docs, ordered=False)  # step 1 done, then the consumer died
    store.write([crashed, message(records[250:], "m2")])
    assert_stored_exactly_once(mongo_db, records)


def test_a_crash_halfway_through_the_counters_is_counted_exactly_once_on_redelivery(open_store, mongo_db,
                                                                                      monkeypatch):
    store = open_store()
    store.init()
    records = make_records("web-01", 1000)  # spans several minutes, so several rollup keys
    crashed = message(records, "m1")
    apply_guarded = store_module._apply_guarded

    def die_halfway(collection: Any, ops: list[Any]) -> None:
        if collection.name == "rollups":
            assert len(ops) > 1
            apply_guarded(collection, ops[:len(ops) // 2])
        raise KeyboardInterrupt("consumer killed halfway through the counters")

    monkeypatch.setattr(store_module, "_apply_guarded", die_halfway)
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
                msg = message(records_by_worker[w], f"r{round_}-w{w}")
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
    counted, late = message(make_records("web-01", 200), "m1"), message(make_records("web-01", 200, first=200), "m2")
    store.write([counted])
    bulk_duplicates = store_module._bulk_duplicates
    answers: list[str] = []

    def race_first(collection: Any, updates: list[Any]) -> list[int]:
        # The first two answers per collection (all messages per key, then message by message):
        # as if another consumer had just created every key.
        if answers.count(collection.name) < 2:
            answers.append(collection.name)
            return list(range(len(updates)))
        return bulk_duplicates(collection, updates)

    monkeypatch.setattr(store_module, "_bulk_duplicates", race_first)
    store._apply_counts([counted, late], {"m1": counted.docs, "m2": late.docs})
    assert answers == ["rollups", "rollups", "hosts", "hosts"], "the race was simulated"
    monkeypatch.undo()
    store.logs.insert_many(late.docs)
    assert_stored_exactly_once(mongo_db, make_records("web-01", 400))


def test_records_bson_or_the_server_can_never_take_are_rejected_and_the_rest_stored(open_store, mongo_db):
    mongo_db.create_collection("logs", validator={"message": {"$not": {"$regex": "^REFUSE"}}})
    store = open_store()
    store.init()
    good = make_records("web-01", 5)
    bad = make_records("web-01", 3, first=5)
    docs = message(good + bad, "m1").docs
    docs[5]["fields"] = {"counter": 2**64 - 1}  # valid JSON, over BSON's 64-bit integers
    docs[6]["fields"] = {"a\x00b": 1}  # a NUL in a key
    docs[7]["message"] = "REFUSE me"  # the server's own validation
    result = store.write([Message("m1", docs)])
    assert set(result.rejected) == {d["_id"] for d in docs[5:]}
    assert all(result.rejected.values()), "each rejected record says why"
    assert result.inserted == 5
    assert_stored_exactly_once(mongo_db, good)
