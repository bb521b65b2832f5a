"""The field catalogue through a real `opslog consume`: each app's parsed field paths, types and
counts in `field_catalogue`, bounded against hostile JSON; and the field indexes it creates."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.store import catalogue
from consumer.store.catalogue import tally_fields
from tests.consumer_support import bodies, make_records, publish, wait_attached, wait_counted
from tests.helpers import run_opslog, stop, wait_until
from tests.records import Record, record_id


def shaped(host: str, app: str, n: int, fields: dict, first: int = 0) -> list[Record]:
    out = []
    for i in range(first, first + n):
        line = f"{app} line {i}"
        out.append(Record(id=record_id(host, f"fp:{app}", i * 40, line.encode()), host=host, app=app,
                          source=f"/var/log/{app}.log", offset=i * 40, message=line,
                          received_at=1795660000.0 + i, ts=1795660000.0 + i, level="info", fields=fields))
    return out


def catalogue_of(db, app: str) -> dict[str, dict]:
    return {d["field"]: d for d in db.field_catalogue.find({"app": app})}


def test_the_consumer_catalogues_each_apps_fields_with_types_and_counts(tmp_path, write_config, mongo_db,
                                                                          amqp_url, names):
    config = write_config(tmp_path, mongo={"field_indexes": ["status", "req.method"], "wildcard_index": True})
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        web = make_records("web-01", 120)  # fields n (int) and status (int), app "web"
        api = shaped("web-01", "shop-api", 30, {"req": {"method": "GET", "path": "/x"}, "duration_ms": 12.5,
                                                "ok": True, "tags": ["a"], "user": None})
        api += shaped("web-01", "shop-api", 10, {"req": {"method": "POST"}, "duration_ms": "13"}, first=30)
        publish(amqp_url, names.exchange, bodies(web, 50) + bodies(api, 20))
        wait_counted(mongo_db, 160, timeout=30)
        wait_until(lambda: (catalogue_of(mongo_db, "shop-api").get("req.method") or {}).get("count") == 40,
                   timeout=10, message="the catalogue holds the second app's batches")
        web_fields = catalogue_of(mongo_db, "web")
        assert {f: (d["count"], d["types"]) for f, d in web_fields.items()} == {
            "n": (120, {"int": 120}), "status": (120, {"int": 120})}
        api_fields = catalogue_of(mongo_db, "shop-api")
        assert {f: (d["count"], d["types"]) for f, d in api_fields.items()} == {
            "req.method": (40, {"string": 40}), "req.path": (30, {"string": 30}),
            "duration_ms": (40, {"double": 30, "string": 10}), "ok": (30, {"bool": 30}),
            "tags": (30, {"array": 30}), "user": (30, {"null": 30})}
        doc = mongo_db.field_catalogue.find_one({"_id": "shop-api\x00req.method"})
        assert doc["app"] == "shop-api" and doc["field"] == "req.method" and doc["last_seen"]

        # A message sent again is stored once and not counted again.
        publish(amqp_url, names.exchange, bodies(web[:50], 50))
        publish(amqp_url, names.exchange, bodies(make_records("web-01", 10, first=120), 10))
        wait_counted(mongo_db, 170, timeout=30)
        wait_until(lambda: catalogue_of(mongo_db, "web")["n"]["count"] == 130, timeout=10,
                   message="the new records counted")
        assert catalogue_of(mongo_db, "web")["status"]["count"] == 130

        keys = {tuple(k for k, _ in info["key"]) for info in mongo_db.logs.index_information().values()}
        assert ("fields.status", "ts") in keys and ("fields.req.method", "ts") in keys
        assert ("fields.$**",) in keys  # SecantusDB takes the wildcard index
    finally:
        assert stop(consumer) == 0, consumer.output()


def test_hostile_json_cannot_blow_up_the_catalogue(tmp_path, write_config, mongo_db, amqp_url, names, monkeypatch):
    monkeypatch.setattr(catalogue, "MAX_PATHS_PER_APP", 50)  # the test process's bound; the consumer's below
    wide = {f"k{i}": i for i in range(5000)}
    deep: dict = {"leaf": 1}
    for _ in range(40):
        deep = {"d": deep}
    tallied = tally_fields([{"app": "evil", "fields": {**wide, "deep": deep}}])
    assert sum(sum(c.values()) for c in tallied.values()) == catalogue.MAX_LEAVES
    assert all(path.count(".") < catalogue.MAX_DEPTH for _, path in tallied)

    config = write_config(tmp_path)
    consumer = run_opslog("consume", config=config)
    try:
        wait_attached(amqp_url, names.queue)
        # Each record brings MAX_LEAVES new paths; 10 records would be 2,000 paths of one app.
        evil = [r for i in range(10) for r in shaped("evil-01", "evil", 1,
                                                     {f"k{i}_{j}": j for j in range(catalogue.MAX_LEAVES)},
                                                     first=i)]
        nested = shaped("evil-01", "evil", 1, {"deep": deep}, first=20)
        publish(amqp_url, names.exchange, bodies(evil + nested, 1))
        wait_counted(mongo_db, 11, timeout=30)
        wait_until(lambda: mongo_db.field_catalogue.count_documents({"app": "evil"}) >= 1000, timeout=10,
                   message="the catalogue filled up to its bound")
        stored = mongo_db.field_catalogue.count_documents({"app": "evil"})
        assert stored == 1000  # MAX_PATHS_PER_APP in the consumer: the rest are not added
        deepest = max(len(d["field"].split(".")) for d in mongo_db.field_catalogue.find({"app": "evil"}))
        assert deepest <= 8
    finally:
        assert stop(consumer) == 0, consumer.output()


def test_tally_names_each_leafs_type_as_mongodb_spells_it():
    from collections import OrderedDict
    docs = [{"app": "a", "fields": {"ok": True, "n": 5, "big": 2 ** 40, "x": 1.5, "none": None, "s": "v",
                                    "at": datetime(2026, 1, 1, tzinfo=UTC), "list": [1], "empty": {},
                                    "req": OrderedDict(method="GET", head={"len": 3})}},
            {"app": "a", "fields": {"n": "5", "": 1, "bad\x00key": 1}},
            {"app": "b", "fields": "not a dict"}]
    tally = {(app, path): dict(types) for (app, path), types in tally_fields(docs).items()}
    assert tally == {("a", "ok"): {"bool": 1}, ("a", "n"): {"int": 1, "string": 1}, ("a", "big"): {"long": 1},
                     ("a", "x"): {"double": 1}, ("a", "none"): {"null": 1}, ("a", "s"): {"string": 1},
                     ("a", "at"): {"date": 1}, ("a", "list"): {"array": 1}, ("a", "empty"): {"object": 1},
                     ("a", "req.method"): {"string": 1}, ("a", "req.head.len"): {"int": 1}}


def walked(docs):
    """The tally of every record walked, as the shape plan must reproduce it."""
    out = {}
    for (app, path, name), n in catalogue._walk([d for d in docs if isinstance(d.get("fields"), dict)
                                                 and d["fields"]]).items():
        out.setdefault((app, path), Counter())[name] = n
    return out


def test_records_of_one_shape_are_counted_as_the_walk_counts_them():
    ints = st.sampled_from([0, 7, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 40])
    leaf = (st.none() | st.booleans() | ints | st.floats(allow_nan=False) | st.text(max_size=3)
            | st.just(datetime(2026, 1, 1, tzinfo=UTC)) | st.lists(st.integers(), max_size=2) | st.just({}))
    value = leaf | st.dictionaries(st.sampled_from(["a", "b", ""]), leaf, max_size=2)
    key = st.sampled_from(["status", "bytes", "path", "", "bad\x00key", "x" * 201, "req"])
    fields = st.dictionaries(key, value, max_size=6)
    # few apps and keys, so shapes repeat: records counted by a plan and records walked in one batch
    docs = st.lists(st.builds(lambda app, f: {"app": app, "fields": f}, st.sampled_from(["a", "b", None]), fields),
                    max_size=30)

    @settings(max_examples=400, deadline=None, derandomize=True, database=None)
    @given(docs)
    def check(batch):
        assert tally_fields(batch) == walked(batch)

    check()
    flat = [{"app": "web", "fields": {"status": 200, "bytes": 10 ** 10 if i % 50 == 0 else i, "path": "/",
                                      "ref": None}} for i in range(200)]
    assert tally_fields(flat) == walked(flat)
    assert dict(tally_fields(flat)[("web", "bytes")]) == {"int": 196, "long": 4}, "int32 checked record by record"
