"""The alert evaluator's cost: CPU of 100 count rules and 100 silence rules every 30 s over 1,000,000 records.

The database is the web stage's (bench/webui_stage.py: BENCH_WEBUI_RECORDS records, default
1,000,000, over the 24 h before its anchor, 8 hosts, 3 apps, with the consumer's rollups and
indexes), reused from bench/work/cache/webui-db when the web stage seeded it already.

One evaluator process (the `opslog alert` evaluator, `webui.alerts.evaluator.Evaluator`, run
with its clock starting at the seed's anchor, so every window holds the records a live system
would have) evaluates:

* 100 count rules, `every: 30s`, window 5 min: 60 the rollups answer (host, app and level
  combinations: one rollups read per cycle for all of them, plus each window's first partial
  minute from `logs`) and 40 text queries counted in `logs` (`app:nginx "timed out"` ...);
* 100 silence rules, `every: 30s`, `for: 5m`, per host and app (a capped count in `logs`).

Measured over BENCH_ALERTS_SECONDS (default 180 s, 6 cycles) after the first cycle: the
evaluator's CPU seconds (utime + stime of its process) per wall second, as a percentage of one
core (target: under 10 %), and the database server's CPU in the same time. Baseline, in the
same run and the same way: the same evaluator with no rules (it only renews its lease), so the
ratio says what the 200 rules add. Also each rule's evaluation time (from the evaluator's
`opslog_alert_evaluation_seconds`).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from datetime import UTC
from pathlib import Path

import pymongo
import yaml

from bench.context import CACHE_DIR, Context, env_int
from bench.measure import cpu_seconds, wait_until
from bench.webui_stage import APPS, DATABASE, HOSTS, seed
from common.localservices import MongoServer, free_port

EVERY = "30s"
TEXT_QUERIES = ('app:nginx "timed out"', "app:nginx Googlebot", "app:shop-api checkout", "app:shop-api declined",
                'app:system "UFW BLOCK"')
RUN_EVALUATOR = """
import signal, sys, time
from datetime import datetime, timedelta, UTC
from common.config import load_config
from common.commands import serve_metrics
from webui.alerts.evaluator import Evaluator
from webui.alerts.store import AlertStore, open_database
config = load_config(sys.argv[1])
anchor, began = datetime.fromisoformat(sys.argv[2]), time.time()
store = AlertStore(open_database(config.mongo))
evaluator = Evaluator(config, store, clock=lambda: anchor + timedelta(seconds=time.time() - began))
signal.signal(signal.SIGTERM, lambda *_: evaluator.stop())
serve_metrics(config.alerts.metrics_listen, evaluator.metrics.registry, lambda: {"database": True})
evaluator.run()
"""


def rules() -> list[dict]:
    apps = [app for app, _ in APPS.values()]
    count: list[dict] = []
    levels = ("error", "warning", "info")
    for host in HOSTS:
        for app in apps:
            for level in levels:
                if len(count) < 60:
                    count.append({"query": f"host:{host} app:{app} level:{level}"})
    for i in range(40):
        count.append({"query": f"{TEXT_QUERIES[i % len(TEXT_QUERIES)]} host:{HOSTS[i % len(HOSTS)]}"})
    out = [{"name": f"count-{i:03d}", "kind": "count", "window": "5m", "above": 1000, "every": EVERY, **r}
           for i, r in enumerate(count)]
    silence = [{"host": HOSTS[i % len(HOSTS)], "app": apps[(i // len(HOSTS)) % len(apps)]} for i in range(100)]
    out += [{"name": f"silence-{i:03d}", "kind": "silence", "for": "5m", "every": EVERY, **s}
            for i, s in enumerate(silence)]
    return out


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def measure(ctx: Context, server: MongoServer, anchor: str, with_rules: bool, seconds: int) -> dict:
    db = pymongo.MongoClient(server.uri)[DATABASE]
    for name in ("alert_state", "alert_history", "alert_deliveries", "alert_lease", "alert_rules"):
        db.drop_collection(name)
    port = free_port()
    config = ctx.work / f"alerts-{'rules' if with_rules else 'idle'}.yaml"
    config.write_text(yaml.safe_dump({
        "mongo": {"uri": f"{server.uri}/{DATABASE}"},
        "alerts": {"metrics_listen": f"127.0.0.1:{port}", "rules": rules() if with_rules else []}}))
    log_path = ctx.work / f"{config.stem}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-c", RUN_EVALUATOR, str(config), anchor], stdout=log,
                            stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
    try:
        expected = 200 if with_rules else 0
        try:  # the first cycle: nine rules in ten have a state (a slow one may still be running)
            wait_until(lambda: db["alert_lease"].find_one({}) is not None
                       and db["alert_state"].count_documents({"last_eval": {"$exists": True}}) >= 0.9 * expected,
                       timeout=300)
        except TimeoutError:
            evaluated = db["alert_state"].count_documents({"last_eval": {"$exists": True}})
            tail = log_path.read_text(errors="replace")[-3000:]
            raise TimeoutError(f"{evaluated} of {expected} rules evaluated after 300 s; "
                               f"evaluator log:\n{tail}") from None
        wait_until(lambda: _scrape_ok(port), timeout=30)
        before = _scrape(port)
        cpu0, db0, t0 = cpu_seconds(proc.pid), cpu_seconds(server.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, db1, t1 = cpu_seconds(proc.pid), cpu_seconds(server.pid), time.monotonic()
        after = _scrape(port)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    wall = t1 - t0
    evaluations = after['opslog_alert_evaluations_total{outcome="ok"}'] \
        - before['opslog_alert_evaluations_total{outcome="ok"}']
    eval_seconds = after["opslog_alert_evaluation_seconds_sum"] - before["opslog_alert_evaluation_seconds_sum"]
    errors = {o: int(after.get(f'opslog_alert_evaluations_total{{outcome="{o}"}}', 0)
                     - before.get(f'opslog_alert_evaluations_total{{outcome="{o}"}}', 0)) for o in ("error", "timeout")}
    by_kind = {}
    if with_rules:
        for kind in ("count", "silence"):
            docs = list(db["alert_state"].find({"rule": {"$regex": f"^{kind}-"}}, {"duration": 1, "from": 1}))
            mean = sum(d.get("duration", 0) for d in docs) / max(1, len(docs))
            by_kind[kind] = {"rules": len(docs), "last_eval_ms_mean": round(1000 * mean, 1),
                             "from": sorted({d.get("from") for d in docs if d.get("from")})}
    stateless = expected - db["alert_state"].count_documents({"last_eval": {"$exists": True}})
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu1 - cpu0, 2), "rules_never_evaluated": stateless,
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / wall, 2),
            "database_cpu_percent_of_one_core": round(100 * (db1 - db0) / wall, 2),
            "evaluations": int(evaluations), "evaluation_failures": errors,
            "evaluation_ms_mean": round(1000 * eval_seconds / evaluations, 1) if evaluations else None,
            "by_kind": by_kind}


def _scrape_ok(port: int) -> bool:
    try:
        _scrape(port)
        return True
    except OSError:
        return False


def run(ctx: Context) -> dict:
    count = env_int("BENCH_WEBUI_RECORDS", 1_000_000)
    seconds = env_int("BENCH_ALERTS_SECONDS", 180)
    with MongoServer(CACHE_DIR / "webui-db") as server:
        manifest = seed(ctx, server.uri, count)
        anchor = manifest["anchor"].replace(tzinfo=UTC).isoformat()
        baseline = measure(ctx, server, anchor, with_rules=False, seconds=seconds)
        loaded = measure(ctx, server, anchor, with_rules=True, seconds=seconds)
    idle = baseline["cpu_percent_of_one_core"] or 0.01
    return {"records": manifest["stored"], "seeded_now": not manifest["reused"], "rules": {"count": 100,
                                                                                           "silence": 100},
            "every": EVERY, "measured_s": seconds, "rules_200": loaded, "baseline_no_rules": baseline,
            "ratio_cpu_vs_no_rules": round(loaded["cpu_percent_of_one_core"] / idle, 1),
            "share_of_target_10pct": round(loaded["cpu_percent_of_one_core"] / 10.0, 3)}


def main() -> int:
    """`python -m bench.alerts_stage`: this stage alone, writing only its key of bench/results.json
    (`make bench` runs it among the others through bench.run)."""
    import json
    import os
    import shutil
    from datetime import datetime

    from bench.generate import generate
    from bench.run import RESULTS

    ctx = Context.from_env()
    shutil.rmtree(ctx.work, ignore_errors=True)
    ctx.work.mkdir(parents=True)
    per_format = -(-env_int("BENCH_WEBUI_RECORDS", 1_000_000) // (len(HOSTS) * len(APPS)))
    try:
        for fmt in APPS:  # the seed reads the first lines of these files only
            ctx.files[fmt] = generate(str(ctx.work / f"{fmt}.log"), fmt, max(per_format, 1000))
        load = [round(x, 2) for x in os.getloadavg()]
        result = run(ctx)
        result["load_average"] = {"start": load, "end": [round(x, 2) for x in os.getloadavg()]}
        result["date"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        shutil.rmtree(ctx.work, ignore_errors=True)
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results["alerts"] = result
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
