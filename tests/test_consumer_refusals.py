"""What the database refuses for a document is dead-lettered for that document alone; its
neighbours are stored and nothing is retried forever. SecantusDB's own refusals where it has
them, MongoDB's (which cannot run here) through the server's `failCommand` fail point."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pymongo
import pytest

from common.amqp import REASON_HEADER
from common.config import load_config
from common.errors import StoreUnavailable
from common.localservices import MongoServer
from consumer.store import PERMANENT_CODES, Message, Store, _sort_write_errors
from tests.consumer_support import bodies, dead_letters, make_records, publish, wait_attached
from tests.helpers import queue_depth, run_opslog, stop, wait_until

# From MongoDB's error_codes.yml: each means this document can never be stored as it is.
NEVER_STORABLE = {2: "BadValue", 15: "Overflow (nested past the storage depth)", 22: "InvalidBSON",
                  52: "DollarPrefixedFieldName", 53: "InvalidIdField", 55: "InvalidDBRef", 56: "EmptyFieldName",
                  57: "DottedFieldName", 121: "DocumentValidationFailure", 10334: "BSONObjectTooLarge",
                  17280: "KeyTooLong", 17419: "document grew past 16 MiB"}


def test_every_never_storable_write_error_code_rejects_its_document_only_and_others_are_retried():
    docs = [{"_id": f"d{i}"} for i in range(len(NEVER_STORABLE) + 2)]
    errors = [{"index": i, "code": code, "errmsg": name} for i, (code, name) in enumerate(NEVER_STORABLE.items())]
    errors.append({"index": len(NEVER_STORABLE), "code": 11000, "errmsg": "duplicate key"})
    result = _sort_write_errors(docs, errors)
    assert sorted(result.rejected) == sorted(f"d{i}" for i in range(len(NEVER_STORABLE)))
    assert result.duplicate_ids == {f"d{len(NEVER_STORABLE)}"}, "a duplicate is stored already"
    assert set(NEVER_STORABLE) <= PERMANENT_CODES
    for transient in (91, 189, 10107, 11600, 50):  # shutting down, stepped down, not primary, interrupted, timeout
        with pytest.raises(StoreUnavailable):
            _sort_write_errors(docs, [{"index": 0, "code": transient, "errmsg": "try again"}])


def document(i: int, fields: Any) -> dict[str, Any]:
    when = datetime(2026, 11, 30)
    return {"_id": f"d{i}", "ts": when, "received_at": when, "host": "h", "app": "a", "source": "/s", "offset": i,
            "message": f"line {i}", "fields": fields, "batch": "m1"}


def test_an_insert_the_server_refuses_whole_for_one_document_is_halved_until_it_is_found(open_store, mongo_db):
    """SecantusDB answers BadValue for the whole command when a document nests past what it can decode
    (a real MongoDB answers Overflow past 200 levels). A client may send that deep once its own
    recursion limit allows it, so this test raises it; the consumer's stays at Python's default."""
    deep: Any = 0
    for _ in range(1500):
        deep = [deep]
    docs = [document(i, {"i": i}) for i in range(7)]
    docs[4]["fields"] = {"a": deep}
    store = open_store()
    store.init()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(6000)
    try:
        result = store.write([Message("m1", docs)])
    finally:
        sys.setrecursionlimit(limit)
    assert list(result.rejected) == ["d4"] and "code 2" in result.rejected["d4"]
    assert sorted(d["_id"] for d in mongo_db.logs.find({}, {"_id": 1})) == [f"d{i}" for i in range(7) if i != 4]


@pytest.fixture(scope="module")
def failpoint_mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """A server of this module's own that takes `configureFailPoint` (test commands on); each
    test scopes its fail point to its own client `appName`, so tests stay independent."""
    base = Path(tmp_path_factory.mktemp("failpoint-mongo"))
    (base / "secantusd.toml").write_text("[server]\nenable_test_commands = true\n", encoding="utf-8")
    with MongoServer(base, in_memory=True) as server:
        yield server


def test_a_record_the_database_refuses_with_overflow_is_dead_lettered_alone_through_a_real_consumer(
        tmp_path, write_config, amqp_url, names, failpoint_mongo):
    """Overflow (15) is what a real MongoDB answers for the whole insert when one document nests past
    200 levels: the fail point refuses the batch's insert, then its first half, then its first record."""
    app = f"opslog-{names.database}"
    uri = f"mongodb://127.0.0.1:{failpoint_mongo.port}/{names.database}?appName={app}"
    records = make_records("web-01", 4)
    config = write_config(tmp_path, mongo={"uri": uri}, consumer={"batch_max_wait": "0.2s"})
    consumer = run_opslog("consume", config=config)
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{failpoint_mongo.port}", serverSelectionTimeoutMS=5000) as client:
        try:
            wait_attached(amqp_url, names.queue)
            client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 3}, "data": {
                "failCommands": ["insert"], "errorCode": 15, "appName": app}})
            publish(amqp_url, names.exchange, bodies(records, 4))
            logs = client[names.database].logs
            wait_until(lambda: logs.count_documents({}) >= 3, timeout=20, message="the 3 neighbours stored")
            wait_until(lambda: queue_depth(amqp_url, names.queue) == 0, timeout=10, message="queue drained")
        finally:
            client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
            assert stop(consumer) == 0, consumer.output()
        assert sorted(d["_id"] for d in logs.find({}, {"_id": 1})) == sorted(r.id for r in records[1:])
    dead = dead_letters(amqp_url, names.dead_letter_queue)
    assert len(dead) == 1 and "code 15" in dead[0][1][REASON_HEADER]
    assert [r["id"] for r in orjson.loads(dead[0][0])["records"]] == [records[0].id]


def test_a_server_refusing_every_insert_whole_is_retried_not_taken_for_a_batch_of_bad_records(
        tmp_path, write_config, names, failpoint_mongo):
    """BadValue for each command, each record alone included, says the server (a parameter it rejects)
    is at fault, not the records: the batch is retried rather than dead-lettered."""
    app = f"opslog-{names.database}"
    config = load_config(str(write_config(tmp_path, mongo={
        "uri": f"mongodb://127.0.0.1:{failpoint_mongo.port}/{names.database}?appName={app}"})))
    store = Store(config.mongo)
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{failpoint_mongo.port}", serverSelectionTimeoutMS=5000) as client:
        try:
            store.init()
            client.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {
                "failCommands": ["insert"], "errorCode": 2, "appName": app}})
            with pytest.raises(StoreUnavailable, match="every insert refused"):
                store.write([Message("m1", [document(i, {"i": i}) for i in range(3)])])
        finally:
            client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
            store.close()
