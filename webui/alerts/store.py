"""`AlertStore`: the alerts' collections in MongoDB, and the one module of `webui.alerts` that imports
pymongo (allowed in .importlinter beside `webui.queries.reader`).

Collections:
  alert_rules       rules made in the UI/API (config rules live in the config file)
  alert_state       one document per rule: its state, last value, recent values (sparkline),
                    and `outbox`, the notices decided but not yet delivered
  alert_history     one document per state change
  alert_deliveries  one document per delivery (notice x notifier): outcome, attempts, status
  alert_silences    silences: a rule or label matchers, muted until a time
  alert_lease       `_id: evaluator`: which `opslog alert` evaluates (holder) and until when (expires)

Every call runs under a deadline (`pymongo.timeout`, which sends maxTimeMS); pymongo's
errors become opslog's: `StoreUnavailable` (unreachable) or `EvaluationTimeout`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError, ServerSelectionTimeoutError

from common.config import AlertRule, MongoConfig
from common.errors import StoreUnavailable
from webui.alerts.rules import from_document, to_document

LEASE_ID = "evaluator"
SPARK_POINTS = 60


class EvaluationTimeout(Exception):
    """A rule's reads outlasted their deadline: the server stopped them (maxTimeMS) or the client gave up."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"evaluation took longer than {seconds:g} s (alerts.timeout)")


class NameTaken(Exception):
    pass


@dataclass(frozen=True)
class Sources:
    """What rules read: records, minute rollups, per-file heartbeats (collection schemas in INTERFACES.md)."""

    logs: Collection
    rollups: Collection
    heartbeats: Collection


def open_database(mongo: MongoConfig, appname: str = "opslog-alert") -> Database:
    client: MongoClient = MongoClient(mongo.uri, tz_aware=True, appname=appname, serverSelectionTimeoutMS=5000,
                                      connectTimeoutMS=5000)
    return client[mongo.database]


class AlertStore:
    def __init__(self, db: Database, timeout: float = 10.0):
        self.db, self.timeout = db, timeout
        self.rules_c = db["alert_rules"]
        self.state_c = db["alert_state"]
        self.history_c = db["alert_history"]
        self.deliveries_c = db["alert_deliveries"]
        self.silences_c = db["alert_silences"]
        self.lease_c = db["alert_lease"]
        self.sources = Sources(logs=db["logs"], rollups=db["rollups"], heartbeats=db["heartbeats"])

    @contextmanager
    def guarded(self, seconds: float | None = None) -> Iterator[None]:
        """Every command inside shares one deadline, sent as maxTimeMS."""
        seconds = seconds or self.timeout
        try:
            with pymongo.timeout(seconds):
                yield
        except ServerSelectionTimeoutError as exc:
            raise StoreUnavailable(f"database unreachable: {exc}") from exc
        except PyMongoError as exc:
            if exc.timeout:
                raise EvaluationTimeout(seconds) from exc
            if isinstance(exc, ConnectionFailure):
                raise StoreUnavailable(f"database unreachable: {exc}") from exc
            raise

    def init(self) -> None:
        with self.guarded():
            self.rules_c.create_index([("name", ASCENDING)], unique=True, name="name")
            self.history_c.create_index([("rule_id", ASCENDING), ("at", DESCENDING)], name="rule_at")
            self.deliveries_c.create_index([("rule_id", ASCENDING), ("at", DESCENDING)], name="rule_at")

    def ping(self) -> bool:
        try:
            with self.guarded(2.0):
                self.db.command("ping")
            return True
        except (StoreUnavailable, EvaluationTimeout, PyMongoError):
            return False

    # rules -----------------------------------------------------------------------------------

    def rules(self) -> list[AlertRule]:
        with self.guarded():
            return [from_document(d) for d in self.rules_c.find({}).sort("name", ASCENDING)]

    def rule(self, rule_id: str) -> AlertRule | None:
        with self.guarded():
            doc = self.rules_c.find_one({"_id": rule_id})
        return from_document(doc) if doc else None

    def create_rule(self, rule: AlertRule, user: str | None) -> str:
        rule_id = uuid.uuid4().hex
        doc = {"_id": rule_id, **to_document(rule), "created_by": user, "updated_at": datetime.now(UTC)}
        try:
            with self.guarded():
                self.rules_c.insert_one(doc)
        except DuplicateKeyError:
            raise NameTaken(rule.name) from None
        return rule_id

    def replace_rule(self, rule_id: str, rule: AlertRule, user: str | None) -> bool:
        doc = {**to_document(rule), "updated_by": user, "updated_at": datetime.now(UTC)}
        try:
            with self.guarded():
                return self.rules_c.update_one({"_id": rule_id}, {"$set": doc}).matched_count == 1
        except DuplicateKeyError:
            raise NameTaken(rule.name) from None

    def delete_rule(self, rule_id: str) -> bool:
        with self.guarded():
            gone = self.rules_c.delete_one({"_id": rule_id}).deleted_count == 1
            if gone:
                self.state_c.delete_one({"_id": rule_id})
        return gone

    # state -----------------------------------------------------------------------------------

    def states(self) -> dict[str, dict[str, Any]]:
        with self.guarded():
            return {d["_id"]: d for d in self.state_c.find({})}

    def state(self, rule_id: str) -> dict[str, Any] | None:
        with self.guarded():
            return self.state_c.find_one({"_id": rule_id})

    def save_state(self, rule_id: str, fields: dict[str, Any], point: dict[str, Any] | None,
                   outbox: list[dict[str, Any]], change: dict[str, Any] | None) -> None:
        """One write holds the new state and the notices it decided (the outbox): a crash leaves
        either both or neither, so the next holder sends what was decided, and nothing twice."""
        update: dict[str, Any] = {"$set": fields}
        push: dict[str, Any] = {}
        if point is not None:
            push["values"] = {"$each": [point], "$slice": -SPARK_POINTS}
        if outbox:
            push["outbox"] = {"$each": outbox}
        if push:
            update["$push"] = push
        self.state_c.update_one({"_id": rule_id}, update, upsert=True)
        if change is not None:
            self.history_c.insert_one({"rule_id": rule_id, **change})

    def outboxes(self) -> list[dict[str, Any]]:
        with self.guarded():
            return list(self.state_c.find({"outbox.0": {"$exists": True}}, {"outbox": 1, "rule": 1}))

    def delivered(self, rule_id: str, notice_id: str, notifier: str, record: dict[str, Any]) -> None:
        """The delivery's record first, then out of the outbox (a crash between: sent again, same id)."""
        with self.guarded():
            self.deliveries_c.insert_one({"rule_id": rule_id, **record})
            self.state_c.update_one({"_id": rule_id}, {"$pull": {"outbox": {"id": notice_id, "notifier": notifier}}})

    def history(self, rule_id: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.guarded():
            return list(self.history_c.find({"rule_id": rule_id}, {"_id": 0}).sort("at", DESCENDING).limit(limit))

    def deliveries(self, rule_id: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.guarded():
            return list(self.deliveries_c.find({"rule_id": rule_id}, {"_id": 0, "payload": 0})
                        .sort("at", DESCENDING).limit(limit))

    # silences ----------------------------------------------------------------------------------

    def silences(self, include_expired: bool = False) -> list[dict[str, Any]]:
        query = {} if include_expired else {"until": {"$gt": datetime.now(UTC)}}
        with self.guarded():
            return list(self.silences_c.find(query).sort("until", DESCENDING).limit(500))

    def create_silence(self, silence: dict[str, Any]) -> str:
        silence_id = uuid.uuid4().hex
        with self.guarded():
            self.silences_c.insert_one({"_id": silence_id, **silence})
        return silence_id

    def delete_silence(self, silence_id: str) -> bool:
        with self.guarded():
            return self.silences_c.delete_one({"_id": silence_id}).deleted_count == 1

    # lease -------------------------------------------------------------------------------------

    def acquire_lease(self, holder: str, seconds: float) -> bool:
        """Take or renew the evaluator's lease: only when free, expired or already ours."""
        now = datetime.now(UTC)
        try:
            with self.guarded(5.0):
                self.lease_c.find_one_and_update(
                    {"_id": LEASE_ID, "$or": [{"holder": holder}, {"expires": {"$lte": now}}]},
                    {"$set": {"holder": holder, "expires": now + timedelta(seconds=seconds), "renewed": now}},
                    upsert=True, return_document=ReturnDocument.AFTER)
            return True
        except DuplicateKeyError:  # someone else holds it: the upsert found no match and hit the _id
            return False

    def release_lease(self, holder: str) -> None:
        with self.guarded(5.0):
            self.lease_c.delete_one({"_id": LEASE_ID, "holder": holder})

    def lease(self) -> dict[str, Any] | None:
        with self.guarded():
            return self.lease_c.find_one({"_id": LEASE_ID})
