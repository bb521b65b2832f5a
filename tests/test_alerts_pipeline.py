"""Alert rules against real processes: files -> opslog ship -> RabbitMQ -> opslog consume -> MongoDB,
watched by `opslog alert`, notifying an HTTP receiver and a real SMTP server (aiosmtpd, STARTTLS + AUTH)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from common.config import load_config
from common.localservices import free_port
from tests.alerts_support import Receiver, SmtpServer, Trickle, write_errors
from tests.helpers import metric, run_opslog, stop, wait_until

RULE = "payment-errors"
EDITOR_TOKEN = "alerts-editor-token-0123456789abcdef"


def count_rule(**over: Any) -> dict[str, Any]:
    return {"name": RULE, "kind": "count", "query": "level:error app:payments", "window": "8s", "above": 2,
            "for": "1s", "every": "1s", "notify": ["hook"], **over}


class Pipeline:
    def __init__(self, tmp_path: Path, write_config, rules: list[dict], notifiers: dict, stack: ExitStack,
                 evaluate: bool = True, **shipper: Any):
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.file = self.logs / "payments.log"
        self.file.touch()
        self.metrics_port = free_port()
        self.sections = {
            "shipper": {"inputs": [{"paths": [str(self.logs / "*.log")], "app": "payments", "format": "plain"}],
                        "batch_max_wait": 0.2, **shipper},
            "consumer": {"batch_max_wait": 0.2},
            "webui": {"api_tokens": [{"token": EDITOR_TOKEN, "role": "editor"}]},
            "alerts": {"notifiers": notifiers, "rules": rules, "metrics_listen": f"127.0.0.1:{self.metrics_port}"}}
        self.config = write_config(tmp_path, **self.sections)
        self.tmp_path, self.write_config = tmp_path, write_config
        self.stack = stack
        self.consumer = self.start("consume")
        self.shipper = self.start("ship")
        self.evaluators = [self.start("alert")] if evaluate else []

    def start_standby(self):
        """A second `opslog alert` (its own metrics port) on the same database."""
        alerts = {**self.sections["alerts"], "metrics_listen": f"127.0.0.1:{free_port()}"}
        config = self.write_config(self.tmp_path / "standby", **{**self.sections, "alerts": alerts})
        proc = run_opslog("alert", config=config)
        self.stack.callback(lambda: proc.poll() is None and stop(proc))
        return proc

    def start(self, command: str):
        proc = run_opslog(command, config=self.config)
        self.stack.callback(lambda: proc.poll() is None and stop(proc))
        return proc


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def state_of(db, rule: str = RULE) -> dict[str, Any]:
    return db.alert_state.find_one({"rule": rule}) or {}


def web_client(config: Path, db):
    from webui import create_app
    client = create_app(load_config(str(config)), db=db).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {EDITOR_TOKEN}"
    return client


def test_error_lines_fire_a_count_rule_once_by_webhook_and_email_and_resolve_once(tmp_path, write_config, mongo_db,
                                                                                  stack):
    receiver = stack.enter_context(Receiver())
    smtp = stack.enter_context(SmtpServer(tmp_path))
    p = Pipeline(tmp_path, write_config, [count_rule(notify=["hook", "mail"])],
                 {"hook": {"type": "webhook", "url": receiver.url}, "mail": smtp.notifier()}, stack)
    wait_until(lambda: state_of(mongo_db).get("last_eval"), timeout=30, message="the rule is evaluated")
    assert state_of(mongo_db)["state"] == "ok" and receiver.requests == []

    write_errors(p.file, 5)
    wait_until(lambda: receiver.accepted(RULE, "firing"), timeout=30, message="a firing webhook")
    wait_until(lambda: smtp.mailbox.messages, timeout=30, message="a firing email")
    firing = receiver.accepted(RULE, "firing")[0]
    assert firing["value"] == 5 and firing["threshold"] == 2 and firing["window"] == "8s"
    assert firing["query"] == "level:error app:payments" and firing["started_at"] and len(firing["fingerprint"]) == 16
    assert "q=level%3Aerror+app%3Apayments" in firing["url"] and firing["url"].startswith("http://127.0.0.1:")
    mail = smtp.mailbox.messages[0]
    assert "[FIRING] payment-errors" in mail["Subject"] and smtp.mailbox.logins == [("opslog", True)]
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in mail.walk()
             if not part.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "payment failed 4" in parts["text/plain"] and "payment failed 4" in parts["text/html"]

    # no more errors: the 8 s window empties and the rule resolves, once
    wait_until(lambda: receiver.accepted(RULE, "resolved"), timeout=40, message="a resolved webhook")
    wait_until(lambda: len(smtp.mailbox.messages) == 2, timeout=30, message="a resolved email")
    wait_until(lambda: state_of(mongo_db)["state"] == "ok", timeout=10, message="back to ok")
    assert [b["state"] for b in receiver.accepted(RULE)] == ["firing", "resolved"]
    assert "[RESOLVED]" in smtp.mailbox.messages[1]["Subject"]

    history = web_client(p.config, mongo_db).get(f"/api/alerts/config:{RULE}/history").get_json()
    changes = [(h["from"], h["to"]) for h in reversed(history["history"])]
    assert changes == [("ok", "pending"), ("pending", "firing"), ("firing", "resolved"), ("resolved", "ok")]
    outcomes = sorted((d["notifier"], d["state"], d["outcome"]) for d in history["deliveries"])
    assert outcomes == [("hook", "firing", "delivered"), ("hook", "resolved", "delivered"),
                        ("mail", "firing", "delivered"), ("mail", "resolved", "delivered")]
    assert metric(p.metrics_port, "opslog_alert_notifications", 'outcome="delivered"') == 4
    assert metric(p.metrics_port, "opslog_alert_evaluations", 'outcome="ok"') > 5
    assert metric(p.metrics_port, "opslog_alert_firing") == 0
    for proc in (p.shipper, p.consumer, *p.evaluators):
        assert stop(proc) == 0, proc.output()


def test_stopping_a_shipper_fires_its_silence_rule(tmp_path, write_config, mongo_db, stack):
    receiver = stack.enter_context(Receiver())
    rule = {"name": "host-silent", "kind": "silence", "host": "test-host", "for": "3s", "every": "1s",
            "notify": ["hook"]}
    p = Pipeline(tmp_path, write_config, [rule], {"hook": {"type": "webhook", "url": receiver.url}}, stack,
                 evaluate=False)
    stack.enter_context(Trickle(p.file))
    wait_until(lambda: mongo_db.logs.find_one({"host": "test-host"}), timeout=30, message="records flow")
    p.evaluators.append(p.start("alert"))  # once the host is live: a silent start would fire at once
    wait_until(lambda: (state_of(mongo_db, "host-silent").get("value") or 0) > 0, timeout=30,
               message="the silence rule sees records")
    assert state_of(mongo_db, "host-silent")["state"] == "ok" and receiver.requests == []

    assert stop(p.shipper) == 0
    wait_until(lambda: receiver.accepted("host-silent", "firing"), timeout=30, message="the silence rule fires")
    body = receiver.accepted("host-silent", "firing")[0]
    assert body["kind"] == "silence" and body["value"] == 0 and body["labels"]["host"] == "test-host"


def test_a_killed_evaluator_is_taken_over_without_a_duplicate_or_a_missed_resolve(tmp_path, write_config,
                                                                                 mongo_db, stack):
    receiver = stack.enter_context(Receiver())
    p = Pipeline(tmp_path, write_config, [count_rule(window="10s", every="1s")],
                 {"hook": {"type": "webhook", "url": receiver.url}}, stack)
    p.evaluators.append(p.start_standby())
    lease = wait_until(lambda: mongo_db.alert_lease.find_one({"_id": "evaluator"}), timeout=30)
    write_errors(p.file, 5)
    wait_until(lambda: receiver.accepted(RULE, "firing"), timeout=30, message="a firing webhook")

    holder_pid = int(mongo_db.alert_lease.find_one({"_id": "evaluator"})["holder"].split(":")[1])
    holder = next(e for e in p.evaluators if e.pid == holder_pid)
    standby = next(e for e in p.evaluators if e.pid != holder_pid)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # the lease lasts one `every` (at least 2 s) past its last renewal; the standby takes it within two
    wait_until(lambda: mongo_db.alert_lease.find_one({"_id": "evaluator", "holder": {"$regex": f":{standby.pid}:"}}),
               timeout=2 * 2 + 5, interval=0.05, message="the standby holds the lease")
    assert lease is not None
    wait_until(lambda: receiver.accepted(RULE, "resolved"), timeout=40, message="the resolve, sent by the standby")
    wait_until(lambda: state_of(mongo_db)["state"] == "ok", timeout=10)
    bodies = receiver.accepted(RULE)
    assert [b["state"] for b in bodies] == ["firing", "resolved"], "one firing, one resolve: none repeated or lost"
    assert bodies[0]["started_at"] == bodies[1]["started_at"] and bodies[0]["fingerprint"] == bodies[1]["fingerprint"]
    assert stop(standby) == 0, standby.output()


def test_a_webhook_answering_500_three_times_is_retried_and_delivered_once(tmp_path, write_config, mongo_db, stack):
    receiver = stack.enter_context(Receiver(fail_first=3))
    p = Pipeline(tmp_path, write_config, [count_rule(window="1h")],
                 {"hook": {"type": "webhook", "url": receiver.url, "attempts": 5}}, stack)
    write_errors(p.file, 5)
    delivery = wait_until(lambda: mongo_db.alert_deliveries.find_one({"rule": RULE}), timeout=60,
                          message="the delivery is recorded")
    assert (delivery["outcome"], delivery["attempts"], delivery["status"]) == ("delivered", 4, 200)
    assert [r.status for r in receiver.requests] == [500, 500, 500, 200]
    assert len({r.headers["X-Opslog-Notification-Id"] for r in receiver.requests}) == 1, "one notice, four tries"
    assert len(receiver.accepted(RULE, "firing")) == 1
    assert mongo_db.alert_deliveries.count_documents({}) == 1
    assert state_of(mongo_db)["outbox"] == []


def test_an_expired_silence_lets_notifications_through(tmp_path, write_config, mongo_db, stack):
    receiver = stack.enter_context(Receiver())
    p = Pipeline(tmp_path, write_config, [count_rule(window="1h", **{"for": "0s"})],
                 {"hook": {"type": "webhook", "url": receiver.url}}, stack)
    client = web_client(p.config, mongo_db)
    created = client.post("/api/silences", json={"rule": RULE, "for": "20s", "comment": "maintenance"})
    assert created.status_code == 201, created.get_json()
    write_errors(p.file, 5)
    wait_until(lambda: state_of(mongo_db).get("state") == "firing" and state_of(mongo_db).get("muted"), timeout=30,
               message="firing while silenced")
    assert receiver.requests == [], "a silence holds the notification back"
    assert metric(p.metrics_port, "opslog_alert_notifications", 'outcome="silenced"') >= 1
    wait_until(lambda: receiver.accepted(RULE, "firing"), timeout=60, message="notified once the silence expired")
    assert len(receiver.accepted(RULE, "firing")) == 1
    assert client.get("/api/silences").get_json()["silences"] == []
    assert [s["comment"] for s in client.get("/api/silences?expired=1").get_json()["silences"]] == ["maintenance"]


def test_a_file_glob_silence_rule_follows_the_heartbeats_not_the_lines(tmp_path, write_config, mongo_db, stack):
    receiver = stack.enter_context(Receiver())
    rule = {"name": "payments-file-silent", "kind": "silence", "host": "test-host", "file": "*/payments.log",
            "for": "3s", "every": "1s", "notify": ["hook"]}
    p = Pipeline(tmp_path, write_config, [rule], {"hook": {"type": "webhook", "url": receiver.url}}, stack,
                 evaluate=False, heartbeat_interval=0.5)
    write_errors(p.file, 1, tag="one line, then quiet")
    wait_until(lambda: mongo_db.heartbeats.find_one({"source": str(p.file)}), timeout=30,
               message="the shipper's heartbeat for the file is stored")
    p.evaluators.append(p.start("alert"))
    # the file stays quiet far longer than `for`, but its shipper keeps saying it reads it
    wait_until(lambda: (state_of(mongo_db, rule["name"]).get("last_eval")), timeout=30)
    first = state_of(mongo_db, rule["name"])["last_eval"]
    wait_until(lambda: state_of(mongo_db, rule["name"])["last_eval"] >= first + timedelta(seconds=6), timeout=30,
               message="six seconds of evaluations")
    state = state_of(mongo_db, rule["name"])
    assert (state["state"], state["from"]) == ("ok", "heartbeats") and state["value"] >= 1
    assert receiver.requests == []

    assert stop(p.shipper) == 0
    wait_until(lambda: receiver.accepted(rule["name"], "firing"), timeout=30, message="no heartbeat: it fires")
    assert receiver.accepted(rule["name"], "firing")[0]["labels"]["file"] == "*/payments.log"
