"""Unordered write commands, sent as such rather than through pymongo's bulk API.

The bulk API does Python work per document (type checks, operation lists) and
per call before the same command goes out: at the consumer's rates, a large
share of its insert's client CPU (figures: bench/README.md, "The consumer"). The
command's write errors come back to the caller to sort; a write concern error
means the write may not be durable yet: StoreUnavailable, so it is retried.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

from common.errors import StoreUnavailable

DUPLICATE_KEY = 11000


def write_command(collection: Collection[dict[str, Any]], name: str, field: str,
                  items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run `{name: collection, field: items}` unordered with the collection's write concern;
    the write errors (each with the `index` of its item)."""
    reply = collection.database.command({name: collection.name, field: items, "ordered": False,
                                         "writeConcern": collection.write_concern.document})
    if concern := reply.get("writeConcernError"):
        raise StoreUnavailable(f"{collection.name} {name}: write concern failed: code {concern.get('code')}: "
                               f"{concern.get('errmsg')}")
    return reply.get("writeErrors", [])
