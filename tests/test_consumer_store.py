"""The store against a real database server: indexes, retention, full-text
detection, and records the database can never take."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import monitoring
from pymongo.write_concern import WriteConcern

from common.config import load_config
from common.errors import StoreUnavailable
from consumer.store import Message, Store
from consumer.store.writes import write_command
from tests.consumer_support import assert_stored_exactly_once, make_records, message_docs


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


def test_records_bson_or_the_server_can_never_take_are_rejected_and_the_rest_stored(open_store, mongo_db):
    mongo_db.create_collection("logs", validator={"message": {"$not": {"$regex": "^REFUSE"}}})
    store = open_store()
    store.init()
    good = make_records("web-01", 5)
    bad = make_records("web-01", 3, first=5)
    docs = message_docs(good + bad, "m1").docs
    docs[5]["fields"] = {"counter": 2**64 - 1}  # valid JSON, over BSON's 64-bit integers
    docs[6]["fields"] = {"a\x00b": 1}  # a NUL in a key
    docs[7]["message"] = "REFUSE me"  # the server's own validation
    result = store.write([Message("m1", docs)])
    assert set(result.rejected) == {d["_id"] for d in docs[5:]}
    assert all(result.rejected.values()), "each rejected record says why"
    assert result.inserted == 5
    assert_stored_exactly_once(mongo_db, good)


class Inserts(monitoring.CommandListener):
    """The insert commands sent to `logs`: how many documents, and with which write concern."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert" and event.command.get("insert") == "logs":
            self.commands.append((len(event.command["documents"]), event.command.get("writeConcern")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_a_batch_goes_in_one_insert_acknowledged_on_disk_and_one_over_16_mib_in_halves(
        tmp_path, write_config, mongo_db):
    inserts = Inserts()
    store = Store(load_config(str(write_config(tmp_path, mongo={}))).mongo, listeners=[inserts])
    try:
        small = make_records("web-01", 300)
        assert store.write([message_docs(small, "m1")]).inserted == 300
        assert inserts.commands == [(300, {"w": 1, "j": True})], "one command, journaled as configured"

        inserts.commands.clear()
        big = make_records("web-02", 40)
        docs = message_docs(big, "m2").docs
        for doc in docs:
            doc["message"] = "x" * 600_000  # 40 x 600 kB: 24 MB, over a command's 16 MiB
        docs[7]["message"] = "y" * (17 << 20)  # one record alone over it
        result = store.write([Message("m2", docs)])
        assert list(result.rejected) == [docs[7]["_id"]] and "too large" in result.rejected[docs[7]["_id"]]
        assert result.inserted == 39
        assert sum(n for n, _ in inserts.commands) == 39, "each stored record sent once"
        assert mongo_db.logs.count_documents({"host": "web-02"}) == 39
    finally:
        store.close()


def test_a_write_concern_error_is_retried_not_taken_for_stored():
    """A replica set that took the write but could not make it durable in time answers ok with a
    `writeConcernError` (SecantusDB has no replicas to fail that way, hence a stand-in)."""
    sent = []

    class Database:
        def command(self, command: dict[str, Any]) -> dict[str, Any]:
            sent.append(command)
            return {"ok": 1, "n": 1, "writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}

    class Collection:
        name, database, write_concern = "logs", Database(), WriteConcern(w="majority", j=True)

    with pytest.raises(StoreUnavailable, match="write concern failed: code 64"):
        write_command(Collection(), "insert", "documents", [{"_id": "a"}])
    assert sent[0]["writeConcern"] == {"w": "majority", "j": True} and sent[0]["ordered"] is False
