"""`AccountStore`: users and saved searches in MongoDB, the web side's writes.

Collections:
  users     {_id: name, name, password_hash (werkzeug, as `opslog hash-password` makes it),
             role, created, updated}
  searches  {_id: random id, name, owner, shared, q, filters: {host, app, source, level: [...]},
             since (relative, "1h"), columns: [...], created, updated}; one name per owner
             (a unique index, made on the first write).

Every call runs under `pymongo.timeout(timeout)`; the user reads go to the primary, so a
removed user or a new password holds at once even when the UI reads logs from a secondary.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pymongo
from flask import current_app
from pymongo import ASCENDING, MongoClient, ReadPreference
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from common.config import MongoConfig
from common.errors import StoreUnavailable

MAX_SEARCHES_LISTED = 1000


class NameTaken(Exception):
    """A user, or one owner's saved search, of that name exists already."""


def open_accounts(mongo: MongoConfig, timeout: float = 10.0) -> AccountStore:
    """An AccountStore on a client of its own (the `opslog user` commands); `close()` it."""
    client: MongoClient = MongoClient(mongo.uri, tz_aware=True, appname="opslog-accounts",
                                      serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)
    return AccountStore(client[mongo.database], timeout, owns_client=True)


class AccountStore:
    def __init__(self, db: Database, timeout: float = 10.0, owns_client: bool = False):
        self.db, self.timeout, self.owns_client = db, timeout, owns_client
        self.users = db.get_collection("users", read_preference=ReadPreference.PRIMARY)
        self.searches = db.get_collection("searches", read_preference=ReadPreference.PRIMARY)
        self._indexed = False
        self._index_lock = threading.Lock()

    def close(self) -> None:
        if self.owns_client:
            self.db.client.close()

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        try:
            if not self.db.client.topology_description.has_readable_server(ReadPreference.PRIMARY):
                # As LogReader does: under a deadline pymongo would spend all of it looking for a
                # server; a ping (serverSelectionTimeoutMS) makes a database that is down a quick 503.
                self.db.command("ping", read_preference=ReadPreference.PRIMARY)
            with pymongo.timeout(self.timeout):
                yield
        except DuplicateKeyError as exc:
            raise NameTaken(str(exc)) from exc
        except PyMongoError as exc:
            if isinstance(exc, ConnectionFailure) or exc.timeout:
                raise StoreUnavailable(f"database unavailable: {exc}") from exc
            raise

    # ---- users ---------------------------------------------------------------------------------

    def user(self, name: str) -> dict[str, Any] | None:
        """{name, password_hash, role, created, updated} or None."""
        with self._guarded():
            return self.users.find_one({"_id": name})

    def list_users(self) -> list[dict[str, Any]]:
        with self._guarded():
            return list(self.users.find({}, {"password_hash": 0}).sort("_id", ASCENDING).limit(10_000))

    def add_user(self, name: str, password_hash: str, role: str) -> None:
        now = datetime.now(UTC)
        with self._guarded():
            self.users.insert_one({"_id": name, "name": name, "password_hash": password_hash, "role": role,
                                   "created": now, "updated": now})

    def update_user(self, name: str, **fields: Any) -> bool:
        """Set `fields` (password_hash, role); False when there is no such user."""
        with self._guarded():
            result = self.users.update_one({"_id": name}, {"$set": {**fields, "updated": datetime.now(UTC)}})
        return result.matched_count == 1

    def remove_user(self, name: str) -> bool:
        with self._guarded():
            return self.users.delete_one({"_id": name}).deleted_count == 1

    # ---- saved searches ------------------------------------------------------------------------

    def _ensure_indexes(self) -> None:
        with self._index_lock:
            if not self._indexed:
                self.searches.create_index([("owner", ASCENDING), ("name", ASCENDING)], unique=True,
                                           name="owner_name")
                self.searches.create_index([("shared", ASCENDING), ("name", ASCENDING)], name="shared_name")
                self._indexed = True

    def visible_searches(self, user: str) -> list[dict[str, Any]]:
        """`user`'s own saved searches and everyone's shared ones, by name."""
        with self._guarded():
            found = self.searches.find({"$or": [{"owner": user}, {"shared": True}]})
            return sorted(found.limit(MAX_SEARCHES_LISTED), key=lambda d: (d["name"].lower(), d["owner"]))

    def search(self, search_id: str) -> dict[str, Any] | None:
        with self._guarded():
            return self.searches.find_one({"_id": search_id})

    def add_search(self, fields: dict[str, Any], owner: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        doc = {"_id": secrets.token_urlsafe(12), **fields, "owner": owner, "created": now, "updated": now}
        with self._guarded():
            self._ensure_indexes()
            self.searches.insert_one(doc)
        return doc

    def update_search(self, search_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        with self._guarded():
            self._ensure_indexes()
            return self.searches.find_one_and_update(
                {"_id": search_id}, {"$set": {**fields, "updated": datetime.now(UTC)}},
                return_document=pymongo.ReturnDocument.AFTER)

    def delete_search(self, search_id: str) -> bool:
        with self._guarded():
            return self.searches.delete_one({"_id": search_id}).deleted_count == 1


def get_accounts() -> AccountStore:
    """The app's AccountStore (made by `create_app`), for views."""
    return current_app.extensions["opslog.accounts"]
