"""The rule state machine, in one place: `ok -> pending (for) -> firing -> resolved (-> ok)`.

`step` is a pure function of (rule, previous state, this evaluation, now, muted) into the
new state and at most one notice to send, as Prometheus' rule manager does. Flapping is
damped by `for`: a breach must hold that long (pending) before the rule fires. A notice
goes out when the rule fires, again every `repeat` while it keeps firing, and once when
it resolves, if its firing was notified. A silence (muted) holds notices back without
stopping the state machine; once it expires a rule still firing is notified (it never
was). A resolve of a firing nobody was told about is not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from common.config import AlertRule

OK, PENDING, FIRING, RESOLVED = "ok", "pending", "firing", "resolved"
STATES = (OK, PENDING, FIRING, RESOLVED)


@dataclass(frozen=True)
class RuleState:
    state: str = OK
    since: datetime | None = None         # when the current state began
    started_at: datetime | None = None    # firing: when it began (kept on the resolve)
    ended_at: datetime | None = None      # resolved: when
    notified_at: datetime | None = None   # this firing's last notice (None: not told yet)
    notices: int = 0                      # notices of this firing so far (numbers them)


@dataclass(frozen=True)
class Notice:
    state: str                            # firing | resolved
    started_at: datetime
    ended_at: datetime | None
    sequence: int                         # 1 = first firing notice, then repeats; resolve follows


@dataclass(frozen=True)
class Step:
    state: RuleState
    notice: Notice | None = None
    held: Notice | None = None            # a notice a silence held back
    changed: bool = False                 # the state changed (a history entry)


def step(rule: AlertRule, prev: RuleState, breached: bool, now: datetime, muted: bool) -> Step:
    if prev.state in (OK, RESOLVED):
        if not breached:
            return Step(RuleState(OK, since=prev.since if prev.state == OK else now), changed=prev.state != OK)
        if rule.for_ > 0 and rule.kind != "silence":
            return Step(RuleState(PENDING, since=now), changed=True)
        return _fire(rule, now, now, muted)
    if prev.state == PENDING:
        if not breached:
            return Step(RuleState(OK, since=now), changed=True)
        if prev.since is not None and now - prev.since < timedelta(seconds=rule.for_):
            return Step(prev)
        return _fire(rule, now, now, muted)
    # firing
    if not breached:
        resolved = RuleState(RESOLVED, since=now, started_at=prev.started_at, ended_at=now)
        notice = Notice("resolved", prev.started_at or now, now, prev.notices + 1)
        if prev.notified_at is None:
            return Step(resolved, changed=True)
        if muted:
            return Step(resolved, held=notice, changed=True)
        return Step(resolved, notice=notice, changed=True)
    due = prev.notified_at is None or now - prev.notified_at >= timedelta(seconds=rule.repeat)
    if not due:
        return Step(prev)
    notice = Notice("firing", prev.started_at or now, None, prev.notices + 1)
    if muted:
        return Step(prev, held=notice)
    return Step(replace(prev, notified_at=now, notices=prev.notices + 1), notice=notice)


def _fire(rule: AlertRule, since: datetime, now: datetime, muted: bool) -> Step:
    firing = RuleState(FIRING, since=since, started_at=since)
    notice = Notice("firing", since, None, 1)
    if muted:
        return Step(firing, held=notice, changed=True)
    return Step(replace(firing, notified_at=now, notices=1), notice=notice, changed=True)
