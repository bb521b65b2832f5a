"""Web API latency over a large collection: p50/p95 per query, as `make bench` reports them.

    python tests/webui/bench_api.py --mongo-uri mongodb://127.0.0.1:27555 --records 200000 --hours 6

Seeds a fresh database the way the consumer fills it (logs, per-minute rollups, hosts;
10 hosts, 2 apps each, realistic level mix, ~180-byte lines, consecutive offsets per
file), then times each query through the app in-process (no HTTP) and prints JSON with
`webui.<query>.p50_ms` / `p95_ms` keys (bench/results.json's naming).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.config import Config, WebConfig  # noqa: E402
from webui import create_app  # noqa: E402
from webui.params import Filters, iso  # noqa: E402
from webui.queries import Store  # noqa: E402

LEVELS = [("info", 800), ("debug", 100), ("warning", 60), ("error", 35), ("critical", 5)]
APPS = ("nginx", "api", "worker", "postgres", "cron")
WORDS = ("request", "served", "upstream", "cache", "user", "session", "order", "payment", "queue", "retry",
         "latency", "bytes", "client", "backend", "shard", "index", "commit", "flush", "lock", "token")


def seed(db, records: int, hours: float, rng: random.Random) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    span = hours * 3600
    levels = [lv for lv, w in LEVELS for _ in range(w)]
    offsets: Counter = Counter()
    rollups: Counter = Counter()
    hosts: dict[str, dict] = {}
    batch = []
    step = span / records
    for i in range(records):
        ts = now - timedelta(seconds=span - i * step)  # oldest first, so offsets grow with time per file
        host = f"web-{i % 10:02d}"
        app = APPS[(i % 10 + (i // 10) % 2) % len(APPS)]
        level = rng.choice(levels)
        words = " ".join(rng.choice(WORDS) for _ in range(18))
        rare = " timeout talking to shard-7" if rng.random() < 0.01 else ""
        message = f"{ts.isoformat()} {level.upper()} [{app}] req={i:08d} {words}{rare}"[:200]
        source = f"/var/log/{app}/current.log"
        offset = offsets[(host, source)]
        offsets[(host, source)] += len(message.encode()) + 1
        batch.append({"_id": f"{i:024x}", "ts": ts, "received_at": ts, "host": host, "app": app, "source": source,
                      "offset": offset, "level": level, "message": message, "fields": {"req": i}})
        rollups[(ts.replace(second=0, microsecond=0), host, app, level)] += 1
        h = hosts.setdefault(host, {"_id": host, "first_seen": ts, "records": 0, "errors": 0, "apps": set(),
                                    "sources": set()})
        h.update(last_seen=ts, records=h["records"] + 1, errors=h["errors"] + (level in ("error", "critical")))
        h["apps"].add(app)
        h["sources"].add(source)
        if len(batch) == 5000:
            db.logs.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.logs.insert_many(batch, ordered=False)
    docs = [{"_id": f"{t.isoformat()}|{h}|{a}|{lv}", "t": t, "host": h, "app": a, "level": lv, "n": n}
            for (t, h, a, lv), n in rollups.items()]
    for k in range(0, len(docs), 5000):
        db.rollups.insert_many(docs[k:k + 5000], ordered=False)
    db.hosts.insert_many([{**h, "apps": sorted(h["apps"]), "sources": sorted(h["sources"])} for h in hosts.values()])
    print(f"seeded {records} records, {len(docs)} rollups over {hours} h", file=sys.stderr)
    return now


def timed(client, url: str, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        response.get_data()
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.get_data()[:300])
    first = samples[0]
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 1),
            "first_ms": round(first, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mongo-uri", required=True)
    parser.add_argument("--database", default="opslog_bench_webui")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="reuse the database if it is already seeded")
    args = parser.parse_args()
    client = pymongo.MongoClient(args.mongo_uri, tz_aware=True)
    db = client[args.database]
    try:
        if not (args.keep and db.logs.estimated_document_count() == args.records):
            client.drop_database(args.database)
            Store(db).ensure_indexes()
            started = time.perf_counter()
            seed(db, args.records, args.hours, random.Random(7))
            print(f"seeding took {time.perf_counter() - started:.1f} s", file=sys.stderr)
        app = create_app(Config(webui=WebConfig(auth="none", secret_key=secrets.token_hex(32))), db=db)
        web = app.test_client()
        newest = db.logs.find_one(sort=[("ts", -1)])
        middle = db.logs.find_one({"_id": f"{args.records // 2:024x}"})
        until = iso(newest["ts"])
        queries = {
            "newest_page": "/api/logs?limit=100",
            "host_level": "/api/logs?host=web-03&level=error,critical&limit=100",
            "text_search": "/api/logs?q=timeout+talking&limit=100",
            "histogram_1h": "/api/histogram",
            "histogram_24h": f"/api/histogram?since=24h&until={until}",
            "context": f"/api/logs/{middle['_id']}/context?before=20&after=20",
            "search_page_html": "/?limit=100",
            "hosts": "/api/hosts",
        }
        results = {}
        for name, url in queries.items():
            # Every query's first call is reported apart: the hour cache makes later 24 h histograms warm.
            stats = timed(web, url, args.runs)
            for key, value in stats.items():
                results[f"webui.{name}.{key}"] = value
            print(f"{name:18s} p50 {stats['p50_ms']:8.1f} ms  p95 {stats['p95_ms']:8.1f} ms  "
                  f"first {stats['first_ms']:8.1f} ms", file=sys.stderr)
        start = time.perf_counter()
        Store(db).histogram(Filters(since=newest["ts"] - timedelta(hours=24), until=newest["ts"]),
                            timedelta(minutes=15), budget=10**9)
        results["webui.histogram_24h_cold_unbudgeted_ms"] = round((time.perf_counter() - start) * 1000, 1)
        print(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            client.drop_database(args.database)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
