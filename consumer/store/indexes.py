"""The indexes opslog needs, created when missing whatever their names, and retention by TTL."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from common.query import field_path

log = logging.getLogger(__name__)

LOG_INDEXES = [
    IndexModel([("ts", DESCENDING)], name="ts"),
    IndexModel([("host", ASCENDING), ("ts", DESCENDING)], name="host_ts"),
    IndexModel([("app", ASCENDING), ("ts", DESCENDING)], name="app_ts"),
    IndexModel([("level", ASCENDING), ("ts", DESCENDING)], name="level_ts"),
    IndexModel([("host", ASCENDING), ("source", ASCENDING), ("offset", ASCENDING)], name="context"),
    # `opslog verify`: a file's stored byte ranges recomputed by walking this index alone
    IndexModel([("host", ASCENDING), ("file", ASCENDING), ("offset", ASCENDING), ("len", ASCENDING)],
               name="coverage"),
]
FILE_STATE_INDEXES = [IndexModel([("host", ASCENDING)], name="host")]  # coverage, heartbeats
ROLLUP_INDEXES = [
    IndexModel([("t", ASCENDING)], name="t"),
    IndexModel([("host", ASCENDING), ("t", ASCENDING)], name="host_t"),
]


WILDCARD_INDEX = IndexModel([("fields.$**", ASCENDING)], name="fields_wildcard")


def field_indexes(names: tuple[str, ...]) -> list[IndexModel]:
    """`mongo.field_indexes`: (fields.<name>, ts) each, so a query on the field plus the time window
    reads only the matching keys (the web UI leads its query with them, `webui.queries.plan`)."""
    return [IndexModel([(field_path(n), ASCENDING), ("ts", DESCENDING)], name=f"{field_path(n)}_ts")
            for n in names]


def ensure_wildcard(collection: Collection[dict[str, Any]]) -> bool:
    """The wildcard index on every parsed field, where the server has them (MongoDB 4.2+): whether it exists."""
    try:
        ensure_indexes(collection, [WILDCARD_INDEX])
        return True
    except OperationFailure as exc:
        log.warning("%s: no wildcard index on fields (the server refused it: %s); list the fields to index "
                    "in mongo.field_indexes", collection.name, exc)
        return False


def key_of(spec: Any) -> tuple[tuple[str, Any], ...]:
    """An index key pattern in one comparable shape (the server may answer 1.0 for 1)."""
    items = spec.items() if hasattr(spec, "items") else spec
    return tuple((name, int(v) if isinstance(v, (int, float)) else v) for name, v in items)


def is_text(spec: Any) -> bool:
    return any(v == "text" for _, v in key_of(spec))


def ensure_indexes(collection: Collection[dict[str, Any]], models: list[IndexModel]) -> None:
    """Create the indexes whose key pattern is missing, whatever name an existing one has."""
    existing = {key_of(info["key"]) for info in collection.index_information().values()}
    missing = [m for m in models if key_of(m.document["key"]) not in existing]
    if missing:
        collection.create_indexes(missing)


def ensure_ttl(collection: Collection[dict[str, Any]], name: str, seconds: int | None,
                plain_otherwise: bool) -> None:
    """Make the single-field index on `name` expire documents after `seconds` (None: never).

    A changed retention is applied with collMod, which is instant; dropping and
    rebuilding the index would scan the whole collection."""
    key = ((name, 1),)
    current = next(((index, info) for index, info in collection.index_information().items()
                    if key_of(info["key"]) == key), None)
    if current is None:
        if seconds is not None:
            collection.create_index([(name, ASCENDING)], name=name, expireAfterSeconds=seconds)
        elif plain_otherwise:
            collection.create_index([(name, ASCENDING)], name=name)
        return
    index, info = current
    if info.get("expireAfterSeconds") == seconds:
        return
    if seconds is not None:
        try:
            collection.database.command("collMod", collection.name,
                                        index={"name": index, "expireAfterSeconds": seconds})
            log.info("%s: documents now expire %ds after %s", collection.name, seconds, name)
            return
        except OperationFailure as exc:  # e.g. a server that cannot turn a plain index into a TTL one
            log.info("%s: collMod refused (%s); rebuilding index %s", collection.name, exc, index)
    collection.drop_index(index)
    if seconds is not None:
        collection.create_index([(name, ASCENDING)], name=name, expireAfterSeconds=seconds)
    elif plain_otherwise:
        collection.create_index([(name, ASCENDING)], name=name)
    log.info("%s: expiry on %s is now %s", collection.name, name, f"{seconds}s" if seconds else "off")
