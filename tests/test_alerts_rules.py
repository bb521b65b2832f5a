"""Alert rules apart from the pipeline: the state machine, config checks, payload shapes, and a slow rule
that times out without holding up the others (a real `opslog alert` on a real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.config import parse_config
from common.errors import ConfigError
from tests.helpers import metric, run_opslog, stop, wait_until
from webui.alerts import states
from webui.alerts.evaluate import glob_regex
from webui.alerts.notify import email_message, slack_body, webhook_body
from webui.alerts.plan import from_rollups
from webui.alerts.rules import config_rules, fingerprint, is_muted

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def rule(**over):
    data = {"name": "r", "kind": "count", "query": "level:error", "window": "5m", "above": 1, "for": "1m",
            "repeat": "1h", **over}
    return config_rules(parse_config({"alerts": {"rules": [data]}}).alerts.rules)[0]


def run(r, seq, muted=()):
    """Feed (seconds after T0, breached) pairs through the state machine; the states and notices."""
    state, out = states.RuleState(), []
    for i, (at, breached) in enumerate(seq):
        step = states.step(r, state, breached, T0 + timedelta(seconds=at), i in muted)
        state = step.state
        out.append((state.state, step.notice.state if step.notice else None))
    return out


def test_a_breach_must_hold_for_before_the_rule_fires_and_a_short_one_never_does():
    r = rule()
    assert run(r, [(0, True), (30, True), (60, True), (90, True), (120, False), (150, False)]) == [
        ("pending", None), ("pending", None), ("firing", "firing"), ("firing", None), ("resolved", "resolved"),
        ("ok", None)]
    assert run(r, [(0, True), (30, False), (60, True), (90, False)]) == [
        ("pending", None), ("ok", None), ("pending", None), ("ok", None)], "flapping is damped by `for`"


def test_firing_repeats_every_repeat_and_resolves_once():
    r = rule(**{"for": "0s", "repeat": "1h"})
    seq = [(0, True), (1800, True), (3600, True), (3700, True), (7200, True), (7300, False), (7400, False)]
    assert [n for _, n in run(r, seq)] == ["firing", None, "firing", None, "firing", "resolved", None]


def test_a_silence_holds_notices_and_a_rule_still_firing_is_notified_when_it_ends():
    r = rule(**{"for": "0s"})
    got = run(r, [(0, True), (30, True), (60, True), (90, False)], muted={0, 1})
    assert got == [("firing", None), ("firing", None), ("firing", "firing"), ("resolved", "resolved")]
    # never told of the firing: no resolve either
    assert run(r, [(0, True), (30, False)], muted={0})[-1] == ("resolved", None)


def test_silences_match_a_rule_by_id_or_name_or_by_label_globs_until_they_end():
    r = rule(name="web-01-silent", kind="silence", query="host:web-01", **{"for": "5m", "above": None,
                                                                          "window": None})
    now = T0
    later = now + timedelta(hours=1)
    assert is_muted(r, [{"rule": "web-01-silent", "until": later}], now)
    assert is_muted(r, [{"rule": r.id, "until": later}], now)
    assert is_muted(r, [{"matchers": {"host": "web-*", "kind": "silence"}, "until": later}], now)
    assert not is_muted(r, [{"matchers": {"host": "db-*"}, "until": later}], now)
    assert not is_muted(r, [{"rule": "web-01-silent", "until": now - timedelta(seconds=1)}], now)
    assert fingerprint(r) == fingerprint(rule(name="web-01-silent", kind="silence", query="host:web-01",
                                              **{"for": "10m", "above": None, "window": None})), \
        "the fingerprint is the rule's name and labels, not its thresholds"


def test_the_config_reports_every_rule_problem_with_its_key():
    with pytest.raises(ConfigError) as caught:
        parse_config({"alerts": {
            "notifiers": {"hook": {"type": "webhook", "url": "ftp://x"},
                          "mail": {"type": "email", "to": ["a@b"], "from": "c@d", "smtp": {"host": "h", "user": "u"}}},
            "rules": [{"name": "a", "kind": "count", "query": "status:[500 TO", "above": 1, "notify": ["pager"]},
                      {"name": "a", "kind": "silence"},
                      {"name": "b", "kind": "ratio", "query": "x", "below": 0.5, "window": "forever"}]}})
    problems = "\n".join(caught.value.problems)
    for key in ("alerts.notifiers.hook.url: must be an http", "alerts.notifiers.mail.smtp.password: user and password",
                "alerts.rules[0].query:", "alerts.rules[0].notify[0]: no notifier named 'pager'",
                "alerts.rules[1].for: is required", "alerts.rules[1].query: a silence rule needs",
                "alerts.rules[2].of: is required", "alerts.rules[2].window: not a duration"):
        assert key in problems, problems


def test_check_config_counts_the_rules_and_fails_on_a_bad_query(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("alerts:\n  notifiers: {h: {type: webhook, url: 'http://x/'}}\n  rules:\n"
                    "    - {name: e, kind: count, query: 'level:error', above: 5, notify: [h]}\n")
    proc = run_opslog("check-config", config=good, log_dir=tmp_path)
    assert proc.wait(timeout=60) == 0 and "1 alert rules, 1 notifiers" in proc.output(), proc.output()
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerts:\n  rules:\n    - {name: e, kind: count, query: 'level:(error', above: 5}\n")
    proc = run_opslog("check-config", config=bad, log_dir=tmp_path)
    assert proc.wait(timeout=60) == 1 and "alerts.rules[0].query:" in proc.output(), proc.output()


PAYLOAD = {"rule": "payment-errors", "kind": "count", "state": "firing", "value": 25.0, "threshold": 20.0,
           "comparison": "above", "window": "5m", "for": "1m", "query": "level:error app:payments",
           "url": "https://logs.example.com/?q=level%3Aerror", "started_at": "2026-11-30T12:00:00.000Z",
           "ended_at": None, "fingerprint": "0123456789abcdef", "notification_id": "n1",
           "lines": [{"ts": "2026-11-30T12:00:01Z", "host": "web-01", "app": "payments", "level": "error",
                      "message": "<b>card declined</b>"}]}


def test_a_slack_body_and_an_email_carry_the_alert_and_escape_log_lines():
    body = slack_body(PAYLOAD)
    assert body["text"].startswith("[FIRING] payment-errors: 25 above 20 over 5m")
    assert body["attachments"][0]["title_link"] == PAYLOAD["url"]
    hook = parse_config({"alerts": {"notifiers": {"h": {"type": "webhook", "url": "http://x/"}}}}).alerts.notifiers["h"]
    assert {"rule", "state", "value", "threshold", "window", "query", "url", "started_at", "fingerprint"} \
        <= set(webhook_body(hook, PAYLOAD))
    mail_cfg = parse_config({"alerts": {"notifiers": {"m": {"type": "email", "to": ["a@b.c"], "from": "o@b.c",
                                                            "smtp": {"host": "h"}}}}}).alerts.notifiers["m"]
    msg = email_message(mail_cfg, PAYLOAD, "n1")
    parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
    assert "<b>card declined</b>" in parts["text/plain"]
    assert "&lt;b&gt;card declined&lt;/b&gt;" in parts["text/html"] and "<b>card" not in parts["text/html"]


def test_globs_and_which_queries_the_rollups_answer():
    assert glob_regex("/var/log/*.log") == r"^/var/log/.*\.log$" and glob_regex("web-0?") == r"^web\-0.$"
    assert from_rollups("level:error app:payments") and from_rollups("host:web-0* -level:debug")
    assert not from_rollups('app:nginx "timed out"') and not from_rollups("status>=500")


def test_a_slow_rule_times_out_and_is_reported_while_the_others_go_on(tmp_path, write_config, mongo_db):
    now = datetime.now(UTC)
    mongo_db.logs.insert_many([{"_id": f"r{i}", "ts": now - timedelta(seconds=i % 600), "host": "web-01",
                                "app": "shop", "level": "info", "source": "/x",
                                "message": f"GET /item/{i} took {i % 97}ms agent Mozilla/5.0"}
                               for i in range(20_000)])
    port = free_metrics_port()
    config = write_config(tmp_path, alerts={"timeout": "0.5s", "metrics_listen": f"127.0.0.1:{port}", "rules": [
        {"name": "slow", "kind": "count", "query": "app:shop /.*(a|b)*took.*9.*ms.*Mozil+a/", "window": "1h",
         "above": 1, "every": "1s"},
        {"name": "quick", "kind": "silence", "host": "db-01", "for": "1h", "every": "1s"}]})
    assert run_opslog("db", "init", config=config).wait(timeout=120) == 0  # the consumer's indexes
    evaluator = run_opslog("alert", config=config)
    try:
        slow = wait_until(lambda: (mongo_db.alert_state.find_one({"rule": "slow"}) or {}).get("slow"), timeout=60,
                          message="the slow rule is reported")
        assert slow
        doc = mongo_db.alert_state.find_one({"rule": "slow"})
        assert "longer than 0.5 s" in doc["error"] and doc.get("state") in (None, "ok")
        # SecantusDB runs an abandoned scan to its end, which delays what comes after it: the slow
        # rule backs off (2, 4, 8... intervals), and the other rule gets its answer in between.
        wait_until(lambda: (mongo_db.alert_state.find_one({"rule": "quick"}) or {}).get("state") == "firing",
                   timeout=120, message="the other rule is evaluated meanwhile")
        quick = mongo_db.alert_state.find_one({"rule": "quick"})
        assert (quick["value"], quick["error"]) == (0, None), "db-01 sent nothing: its silence rule fires"
        assert (metric(port, "opslog_alert_evaluations", 'outcome="timeout"') or 0) >= 1
        assert (mongo_db.alert_state.find_one({"rule": "slow"}) or {}).get("state") in (None, "ok")
    finally:
        assert stop(evaluator) == 0, evaluator.output()


def free_metrics_port() -> int:
    from common.localservices import free_port
    return free_port()


def test_rollup_counts_equal_record_counts_over_windows_cut_mid_minute(mongo_db):
    from consumer.tally import tally
    from webui.alerts.evaluate import MinuteTable, evaluate
    from webui.alerts.store import AlertStore

    now = datetime.now(UTC).replace(second=40, microsecond=0)
    docs = [{"_id": f"r{i}", "ts": (now - timedelta(seconds=7 * i)).replace(tzinfo=None),
             "received_at": now.replace(tzinfo=None), "host": f"web-0{i % 3}", "app": "pay" if i % 2 else "web",
             "level": ("error", "info", "warning", None)[i % 4], "source": "/x", "message": f"line {i}"}
            for i in range(120)]  # 14 minutes of records, one every 7 s
    mongo_db.logs.insert_many(docs)
    mongo_db.rollups.insert_many([{"_id": m.key, "t": m.minute, "host": m.host, "app": m.app, "level": m.level,
                                   "n": m.n} for m in tally(docs).minutes])
    store = AlertStore(mongo_db)
    for window in ("1m", "90s", "5m", "7m", "10m"):
        for query in ("level:error", "level:error app:pay", "host:web-01 -level:info", "app:web"):
            r = rule(query=query, window=window)
            table = MinuteTable.load(store.sources, now - timedelta(minutes=15), now)
            from_rollups = evaluate(store.sources, table, r, now, 10_000)
            from_logs = evaluate(store.sources, None, r, now, 10_000)
            assert (from_rollups.source, from_logs.source) == ("rollups", "logs")
            assert from_rollups.value == from_logs.value, (window, query)
    ratio = rule(kind="ratio", query="level:error", of="app:pay", window="10m", above=0.2)
    result = evaluate(store.sources, None, ratio, now, 10_000)
    since = (now - timedelta(minutes=10)).replace(tzinfo=None)
    errors = sum(1 for d in docs if d["level"] == "error" and d["ts"] >= since)
    pay = sum(1 for d in docs if d["app"] == "pay" and d["ts"] >= since)
    assert result.value == pytest.approx(errors / pay) and result.breached == (errors / pay > 0.2)
