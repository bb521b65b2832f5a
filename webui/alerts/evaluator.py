"""`opslog alert`: evaluates every rule on its `every`, while it holds the lease.

Several instances may run; one evaluates. Each tick (at most a second) an instance takes or
renews the lease (`alert_lease`: holder, expires = now + the shortest `every`): renewed by its
holder, taken by another only once expired. A killed holder's lease runs out within one
`every`, and the next tick of a standby takes it: a takeover within two intervals. A new holder
loads the rules' states from `alert_state` and evaluates at once every rule whose last
evaluation is older than its `every`.

One evaluation runs in a worker thread under its own deadline (`alerts.timeout`, sent as
maxTimeMS): a slow rule ends in a timeout that is recorded on its state (`error`, `slow`) and
counted (`opslog_alert_evaluations_total{outcome="timeout"}`) while the others go on in the
other workers; the main loop never waits for a rule. A rule that timed out is tried again after
2, 4, 8... of its intervals, so it does not keep the database busy for nothing.

Notices and the crash window. The evaluation's new state and the notices it decided (one per
notifier: the outbox) are written in ONE update of the rule's state document, before anything
is sent; the sender thread then delivers each outbox entry, records the delivery
(`alert_deliveries`), and only then pulls it from the outbox. So:
* a crash before that write loses nothing: the state did not move, and the next holder decides
  the same transition again (the firing, or the resolve) from the same records;
* a crash after it leaves the notices in the outbox: the next holder sends them (a resolve is
  never missed), and never decides them a second time, because the state says they were;
* a crash between a receiver's acceptance and our record of it is the one window where a
  notice goes out twice; it carries the same `notification_id` both times, so the receiver
  can drop it. Recording "notified" after sending instead would turn that window into a lost
  notice (a missed resolve), which is the worse failure for on-call.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.config import AlertRule, Config
from common.errors import StoreUnavailable
from webui import params
from webui.alerts import states
from webui.alerts.evaluate import MinuteTable, Result, evaluate, top_lines
from webui.alerts.notify import deliver
from webui.alerts.plan import from_rollups
from webui.alerts.rules import config_rules, fingerprint, is_muted, labels
from webui.alerts.store import AlertStore, EvaluationTimeout

log = logging.getLogger(__name__)
RULES_RELOAD = 5.0   # seconds between reads of the rules made in the UI


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.evaluations = Counter("opslog_alert_evaluations", "Rule evaluations, by outcome (ok, error, timeout)",
                                   ["outcome"], registry=self.registry)
        self.seconds = Histogram("opslog_alert_evaluation_seconds", "Time one rule's evaluation took",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                 registry=self.registry)
        self.notifications = Counter("opslog_alert_notifications", "Notifications by outcome "
                                     "(delivered, failed, silenced)", ["outcome"], registry=self.registry)
        self.firing = Gauge("opslog_alert_firing", "Rules firing now", registry=self.registry)
        self.holder = Gauge("opslog_alert_lease_held", "1 while this instance holds the evaluator lease",
                            registry=self.registry)
        for outcome in ("ok", "error", "timeout"):
            self.evaluations.labels(outcome)
        for outcome in ("delivered", "failed", "silenced"):
            self.notifications.labels(outcome)


def human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def iso(dt: datetime | None) -> str | None:
    """The API's time format (webui.params.iso), None for no time."""
    return None if dt is None else params.iso(dt)


def permalink(config: Config, rule: AlertRule, since: datetime, until: datetime | None) -> str:
    """The search that shows what the rule counted, on `webui.public_url` (or the listen address)."""
    base = config.webui.public_url or f"http://{config.webui.listen}"
    terms = [f"{key}:{getattr(rule, key)}" for key in ("host", "app") if getattr(rule, key)]
    if rule.file:
        terms.append(f"source:{rule.file}")
    if rule.query:
        terms.append(rule.query if not terms else f"({rule.query})")
    args = {"q": " ".join(terms), "since": iso(since)}
    if until is not None:
        args["until"] = iso(until)
    return f"{base}/?{urlencode({k: v for k, v in args.items() if v})}"


def state_from(doc: dict[str, Any] | None) -> states.RuleState:
    if not doc:
        return states.RuleState()

    def t(key: str) -> datetime | None:
        value = doc.get(key)
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
    return states.RuleState(state=doc.get("state", states.OK), since=t("since"), started_at=t("started_at"),
                            ended_at=t("ended_at"), notified_at=t("notified_at"), notices=int(doc.get("notices", 0)))


@dataclass
class _Running:
    future: Future
    started: float
    reported: bool = False


class Evaluator:
    def __init__(self, config: Config, store: AlertStore, holder: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        """`clock`: the time rules are evaluated at (the bench replays a seeded day); the lease keeps real time."""
        self.config, self.store = config, store
        self.clock = clock or (lambda: datetime.now(UTC))
        self.alerts = config.alerts
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.metrics = Metrics()
        self.stop_event, self.wake_sender = threading.Event(), threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rule")
        self.rules: list[AlertRule] = config_rules(self.alerts.rules)
        self.rules_read = -RULES_RELOAD
        self.holding = self.initialised = False
        self.states: dict[str, states.RuleState] = {}
        self.next_due: dict[str, float] = {}
        self.running: dict[str, _Running] = {}
        self.timeouts: dict[str, int] = {}  # rule id -> timeouts in a row (its evaluations back off)
        self.lock = threading.Lock()
        self.sender = threading.Thread(target=self._send_loop, name="sender", daemon=True)

    # the loop ------------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_sender.set()

    @property
    def lease_seconds(self) -> float:
        shortest = min((r.every for r in self.rules), default=30.0)
        return min(60.0, max(2.0, shortest))

    def run(self) -> None:
        log.info("alert evaluator %s: %d rule(s) from the config", self.holder, len(self.alerts.rules))
        self.sender.start()
        while not self.stop_event.is_set():
            try:
                self.tick()
            except (StoreUnavailable, EvaluationTimeout) as exc:
                if self.holding:
                    log.warning("database unavailable (%s): evaluation paused", exc)
                self.holding = False
                self.metrics.holder.set(0)
            self.stop_event.wait(min(1.0, self.lease_seconds / 2))
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.sender.join(timeout=30)
        if self.holding:
            try:
                self.store.release_lease(self.holder)  # a clean stop hands over at once
            except (StoreUnavailable, EvaluationTimeout):
                pass
        log.info("alert evaluator %s stopped", self.holder)

    def _reload_rules(self) -> None:
        if time.monotonic() - self.rules_read < RULES_RELOAD:
            return
        self.rules = config_rules(self.alerts.rules) + self.store.rules()
        self.rules_read = time.monotonic()

    def tick(self) -> None:
        if not self.initialised:
            self.store.init()
            self.initialised = True
        self._reload_rules()
        held = self.store.acquire_lease(self.holder, self.lease_seconds)
        if held and not self.holding:
            self._take_over()
        elif not held and self.holding:
            log.warning("%s lost the evaluator lease (another instance holds it)", self.holder)
        self.holding = held
        self.metrics.holder.set(1 if held else 0)
        if not held:
            return
        self._report_slow()
        mono, now = time.monotonic(), self.clock()
        due = [r for r in self.rules if self.next_due.get(r.id, 0.0) <= mono and r.id not in self.running]
        if not due:
            return
        with self.store.guarded():
            silences = self.store.silences()
        table = self._minute_table(due, now)
        for rule in due:
            self.next_due[rule.id] = mono + rule.every
            self.running[rule.id] = _Running(self.pool.submit(self._evaluate_one, rule, table, silences, now), mono)
        firing = sum(1 for s in self.states.values() if s.state == states.FIRING)
        self.metrics.firing.set(firing)

    def _take_over(self) -> None:
        """Holder now: the states as the previous holder left them; rules not evaluated within
        their `every` are due at once; the outbox it left is delivered."""
        log.info("%s holds the evaluator lease", self.holder)
        docs = self.store.states()
        self.states = {rule_id: state_from(doc) for rule_id, doc in docs.items()}
        mono, now = time.monotonic(), self.clock()
        self.next_due = {}
        for rule in self.rules:
            last = docs.get(rule.id, {}).get("last_eval")
            if isinstance(last, datetime):
                age = (now - (last.replace(tzinfo=UTC) if last.tzinfo is None else last)).total_seconds()
                self.next_due[rule.id] = mono + max(0.0, rule.every - age)
        self.wake_sender.set()

    def _minute_table(self, due: list[AlertRule], now: datetime) -> MinuteTable | None:
        """One rollups read for every due rule that the rollups can answer."""
        windows = [r.window for r in due if r.kind in ("count", "ratio") and from_rollups(r.query)
                   and (r.kind == "count" or from_rollups(r.of))]
        if not windows:
            return None
        try:
            with self.store.guarded(self.alerts.timeout):
                return MinuteTable.load(self.store.sources, now - timedelta(seconds=max(windows)), now)
        except EvaluationTimeout:
            log.warning("reading the rollups took longer than %gs: counting from logs this time",
                        self.alerts.timeout)
            return None

    def _report_slow(self) -> None:
        """A rule still running past its deadline (plus a grace) is reported, once; the rest go on."""
        mono = time.monotonic()
        for rule_id, running in list(self.running.items()):
            if running.future.done():
                del self.running[rule_id]
            elif not running.reported and mono - running.started > self.alerts.timeout + 2:
                running.reported = True
                log.warning("rule %s: evaluation still running after %.0fs", rule_id, mono - running.started)
                with self.store.guarded():
                    self.store.save_state(rule_id, {"slow": True, "error": f"still running after "
                                                    f"{mono - running.started:.0f}s"}, None, [], None)

    # one rule ------------------------------------------------------------------------------------

    def _evaluate_one(self, rule: AlertRule, table: MinuteTable | None, silences: list[dict[str, Any]],
                      now: datetime) -> None:
        started = time.perf_counter()
        try:
            with self.store.guarded(self.alerts.timeout):
                result = evaluate(self.store.sources, table, rule, now, self.alerts.count_cap)
        except EvaluationTimeout as exc:
            self._failed(rule, now, str(exc), "timeout", started)
            return
        except Exception as exc:  # a bad rule must not stop the others: recorded on its state
            log.warning("rule %s: evaluation failed: %s", rule.name, exc)
            self._failed(rule, now, f"{type(exc).__name__}: {exc}", "error", started)
            return
        seconds = time.perf_counter() - started
        self.timeouts.pop(rule.id, None)
        prev = self.states.get(rule.id, states.RuleState())
        muted = is_muted(rule, silences, now)
        st = states.step(rule, prev, result.breached, now, muted)
        outbox: list[dict[str, Any]] = []
        if st.notice is not None:
            payload = self.payload(rule, st.notice, result, now)
            outbox = [{"id": payload["notification_id"], "notifier": name, "payload": payload, "at": now}
                      for name in rule.notify]
        if st.held is not None:
            self.metrics.notifications.labels("silenced").inc(len(rule.notify))
        new = st.state
        fields = {"rule": rule.name, "state": new.state, "since": new.since, "started_at": new.started_at,
                  "ended_at": new.ended_at, "notified_at": new.notified_at, "notices": new.notices,
                  "value": result.value, "capped": result.capped, "from": result.source, "muted": muted,
                  "last_eval": now, "duration": seconds, "error": None, "slow": False}
        change = None
        if st.changed:
            change = {"rule": rule.name, "at": now, "from": prev.state, "to": new.state, "value": result.value,
                      "muted": muted}
        try:
            with self.store.guarded():
                self.store.save_state(rule.id, fields, {"t": now, "v": result.value}, outbox, change)
        except (StoreUnavailable, EvaluationTimeout) as exc:
            # Not recorded, so not moved: the next evaluation decides the same step again.
            log.warning("rule %s: state not saved (%s); evaluated again next time", rule.name, exc)
            self.metrics.evaluations.labels("error").inc()
            return
        self.states[rule.id] = new
        self.metrics.evaluations.labels("ok").inc()
        self.metrics.seconds.observe(seconds)
        if outbox:
            log.info("rule %s: %s (value %s), notifying %s", rule.name, st.notice.state if st.notice else "",
                     result.value, ", ".join(rule.notify))
            self.wake_sender.set()

    def _failed(self, rule: AlertRule, now: datetime, error: str, outcome: str, started: float) -> None:
        if outcome == "timeout":
            # A rule too slow for its deadline would take the database's time every `every` for
            # nothing: it is tried again after 2, 4, 8... intervals (at most 10, or 5 min).
            streak = self.timeouts[rule.id] = self.timeouts.get(rule.id, 0) + 1
            wait = min(rule.every * 2 ** streak, max(10 * rule.every, 300.0))
            self.next_due[rule.id] = time.monotonic() + wait
        self.metrics.evaluations.labels(outcome).inc()
        self.metrics.seconds.observe(time.perf_counter() - started)
        try:
            with self.store.guarded():
                self.store.save_state(rule.id, {"rule": rule.name, "error": error, "slow": outcome == "timeout",
                                                "last_eval": now}, None, [], None)
        except (StoreUnavailable, EvaluationTimeout):
            pass

    def payload(self, rule: AlertRule, notice: states.Notice, result: Result, now: datetime) -> dict[str, Any]:
        fp = fingerprint(rule)
        started = notice.started_at
        window = rule.for_ if rule.kind == "silence" else rule.window
        link = permalink(self.config, rule, started - timedelta(seconds=window), notice.ended_at)
        lines: list[dict[str, Any]] = []
        if notice.state == "firing" and rule.kind == "count":
            try:
                with self.store.guarded(self.alerts.timeout):
                    lines = top_lines(self.store.sources, rule, now)
            except (StoreUnavailable, EvaluationTimeout):
                lines = []
        return {
            "rule": rule.name, "rule_id": rule.id, "kind": rule.kind, "state": notice.state,
            "value": result.value, "threshold": rule.threshold,
            "comparison": "silent" if rule.kind == "silence" else ("above" if rule.above is not None else "below"),
            "window": human(window), "for": human(rule.for_), "query": rule.query, "of": rule.of,
            "url": link, "started_at": iso(started), "ended_at": iso(notice.ended_at), "at": iso(now),
            "fingerprint": fp, "notification_id": f"{fp}-{int(started.timestamp() * 1000)}-{notice.sequence}"
                                                  f"-{notice.state}",
            "labels": labels(rule), "capped": result.capped, "lines": lines,
        }

    # delivery ------------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self.stop_event.is_set():
            self.wake_sender.wait(5.0)
            self.wake_sender.clear()
            if not self.holding or self.stop_event.is_set():
                continue
            try:
                self._send_outboxes()
            except (StoreUnavailable, EvaluationTimeout) as exc:
                log.warning("outbox not read (%s); trying again", exc)

    def _send_outboxes(self) -> None:
        for box in self.store.outboxes():
            for entry in box.get("outbox", []):
                if self.stop_event.is_set() or not self.holding:
                    return  # left in the outbox: the next holder sends it
                self._send(box["_id"], entry)

    def _send(self, rule_id: str, entry: dict[str, Any]) -> None:
        notifier = self.alerts.notifiers.get(entry["notifier"])
        payload = entry["payload"]
        record: dict[str, Any] = {"rule": payload.get("rule"), "notification_id": entry["id"],
                                  "notifier": entry["notifier"], "state": payload.get("state"),
                                  "value": payload.get("value"), "payload": payload}
        if notifier is None:
            record.update(outcome="failed", attempts=0, status=None,
                          error=f"no notifier named {entry['notifier']!r} in alerts.notifiers")
        else:
            outcome = deliver(notifier, payload, entry["id"], sleep=self.stop_event.wait)
            if outcome.outcome == "failed" and self.stop_event.is_set():
                return  # stopped mid-retry: not a failure, the next holder sends it
            record.update(type=notifier.type, outcome=outcome.outcome, attempts=outcome.attempts,
                          status=outcome.status, error=outcome.error, seconds=round(outcome.seconds, 3))
            log.log(logging.INFO if outcome.outcome == "delivered" else logging.WARNING,
                    "rule %s: %s notice to %s: %s after %d attempt(s)%s", payload.get("rule"), payload.get("state"),
                    entry["notifier"], outcome.outcome, outcome.attempts,
                    f" ({outcome.error})" if outcome.error else "")
        record["at"] = datetime.now(UTC)
        self.store.delivered(rule_id, entry["id"], entry["notifier"], record)
        self.metrics.notifications.labels(record["outcome"]).inc()
