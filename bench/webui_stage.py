"""Web API latency over a large collection: p50/p95 of the UI's queries.

The database holds BENCH_WEBUI_RECORDS records (default 1,000,000) shaped as
the consumer writes them: `logs` documents made by `common.record.to_document`
from the generated nginx, JSON and syslog files, parsed by opslog's parsers,
for 8 hosts, spread evenly over the 24 h before a fixed anchor time; `rollups`
(per minute, host, app, level) and `hosts` counted by the consumer's own
`consumer.tally` (written in bulk, without its per-message guards);
the indexes the consumer's own `Store.init()` creates, built after the inserts.

The query language (issue 14): QUERY_LANGUAGE's queries on a 1 h window and a
field query's 24 h histogram, each reported beside the ratio of its p95 over a
bare-term query (`text_search`) and over no query (`newest_page`) of the same
run and server. Then `field_indexes`: the field queries again on one server
after building (fields.status, ts) and (fields.duration_ms, ts) as
`mongo.field_indexes` would, then after building the wildcard index
`fields.$**` instead (each build timed, each dropped afterwards so the cache
keeps its key), and the insert rate of the seeded documents under each set of
indexes; and the field catalogue's CPU per record (`tally_fields`).

Seeding that many documents into SecantusDB takes minutes (its indexed insert
rate is a few thousand documents a second), so the seeded database is kept in
bench/work/cache/webui-db and reused while its manifest (record count,
generator seed, seed version, index names) still matches: only the first run
pays for it. BENCH_WEBUI_CACHE=0 seeds a throwaway database instead.

The API is served twice over the same database, by a real `opslog web` process
(waitress, `webui.threads` 8) and by the same app on werkzeug's threaded
development server (what `opslog web` ran before issue 12): `werkzeug` holds the
second set of figures, `ratio` has waitress' over werkzeug's. Both run at once and
each request goes to one then the other, the order alternating, so the machine's
noise falls on both alike. Each is queried over HTTP with a bearer token, one
request at a time, each with a slightly different window (so
a cache cannot answer every request from one entry), windows anchored at the
seed's anchor time. Queries, from the UI issue: newest page (1 h window),
host + level filter (1 h), text search (1 h), histogram over 24 h, context
(20 lines before and after a record). Then `concurrent_newest_page`: CLIENTS
clients at once, each sending CLIENT_REQUESTS newest-page requests back to back:
requests/s over the whole burst and the p95 latency of one request, the mean of
BURSTS bursts taking turns between the servers.
"""

from __future__ import annotations

import math
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson
import pymongo
from pymongo import IndexModel

from bench.context import CACHE_DIR, Context, env_int
from bench.generate import DEFAULT_SEED
from bench.measure import percentile, wait_until
from bench.procs import OpslogProcess, write_config
from bench.records import parsed_lines, record
from common.config import MongoConfig
from common.localservices import MongoServer, free_port
from common.record import to_document
from consumer.tally import HostCount, MinuteCount, tally

SEED_VERSION = 2  # bump when the seeded documents change (generator, parsers, shape), to drop old caches
DATABASE = "opslog_webui"
SPAN = timedelta(hours=24)
HOSTS = tuple(f"web-{i:02d}" for i in range(1, 9))
APPS = {"nginx_combined": ("nginx", "/var/log/nginx/access.log"),
        "json": ("shop-api", "/var/log/shop-api/app.log"),
        "syslog": ("system", "/var/log/syslog")}
TEXT = ("timed out", "Googlebot", "checkout", "declined", "UFW BLOCK")
QUERY_LANGUAGE = {  # the queries; targets: p95 <= 300 ms, the histogram's <= 1 s
    "q_level_host_prefix": "level:error host:web-0*",
    "q_negated_phrase": 'app:nginx -"Googlebot"',
    "q_status_gte_500": "status>=500",
    "q_field_range": "duration_ms:[250 TO 500]",
    "q_regex_message": r'message:/HTTP\/1\.1" 50\d/',
}
FIELD_HISTOGRAM = "status>=500"
FIELD_QUERIES = ("q_status_gte_500", "q_field_range", "q_field_equality", "histogram_24h_field",
                 "histogram_24h_field_equality")
TARGET_MS = {**{name: 300 for name in QUERY_LANGUAGE}, "histogram_24h_field": 1000,
             "histogram_24h_field_equality": 1000}
INSERT_SAMPLE = 10_000
WARMUP, REQUESTS = 3, 25
CLIENTS, CLIENT_REQUESTS, BURSTS = 16, 10, 4
SERVERS = ("waitress", "werkzeug")
# The app on werkzeug's threaded development server (a thread per connection, no bound), as
# `opslog web` served it before issue 12: the "before" side of the server comparison.
WERKZEUG_SERVE = """
import sys
from werkzeug.serving import make_server
from common.config import load_config
from webui import create_app
config = load_config(sys.argv[1])
host, _, port = config.webui.listen.rpartition(":")
make_server(host, int(port), create_app(config), threaded=True).serve_forever()
"""
CHUNK = 5000
SEEDED = ("logs", "rollups", "hosts")  # the collections the seed fills: their indexes key the cache


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def consumer_indexes(client: pymongo.MongoClient, uri: str) -> dict[str, list[IndexModel]]:
    """The secondary indexes the consumer's `Store.init()` creates, per collection, read back
    from a scratch database: seeding builds the same ones once the documents are in, which
    is faster than inserting under them, and does it without the consumer's 60 s socket
    timeout, which an index build over a million documents outlasts."""
    from consumer.store import Store

    scratch = f"{DATABASE}_indexes"
    client.drop_database(scratch)
    store = Store(MongoConfig(uri=f"{uri}/{scratch}"))
    store.init()
    store.close()
    found: dict[str, list[IndexModel]] = {}
    for name in sorted(client[scratch].list_collection_names()):
        for index, spec in sorted(client[scratch][name].index_information().items()):
            keys = list(spec["key"])
            if index == "_id_" or any(k == "_fts" for k, _ in keys):
                continue  # a $text index cannot be re-created from its stored key; SecantusDB has none
            options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
            found.setdefault(name, []).append(IndexModel(keys, name=index, **options))
    client.drop_database(scratch)
    return found


def seed(ctx: Context, uri: str, count: int) -> dict:
    """Fill DATABASE with about `count` records unless it already holds this seed; its manifest."""
    client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)  # no socket timeout: index builds
    db = client[DATABASE]
    indexes = consumer_indexes(client, uri)
    key = {"version": SEED_VERSION, "records": count, "generator_seed": DEFAULT_SEED,
           "indexes": {name: [m.document["name"] for m in models] for name, models in indexes.items()
                       if name in SEEDED}}
    manifest = db["bench_seed"].find_one({"_id": "seed"})
    if manifest:  # caches keyed before SEEDED listed every collection the consumer indexes
        manifest["key"]["indexes"] = {k: v for k, v in manifest["key"]["indexes"].items() if k in SEEDED}
    if manifest and manifest["key"] == key:
        client.close()
        return {**manifest, "reused": True}
    client.drop_database(DATABASE)
    began = time.monotonic()
    anchor = datetime.now(UTC).replace(second=0, microsecond=0)
    start = anchor - SPAN
    per_block = math.ceil(count / (len(HOSTS) * len(APPS)))
    rollups: dict[str, MinuteCount] = {}
    hosts: dict[str, HostCount] = {}
    sample_ids: list[str] = []
    chunk: list[dict] = []
    stored = 0
    for fmt, (app, source) in APPS.items():
        lines = parsed_lines(ctx.path(fmt), fmt, per_block)
        step = SPAN.total_seconds() / len(lines)
        for h, host in enumerate(HOSTS):
            for j, line in enumerate(lines):
                ts = round(start.timestamp() + (j + 0.5) * step + h * 0.001, 3)
                doc = to_document(record(line, host, app, source, ts + 0.5, ts=ts).to_wire())
                doc["batch"] = f"seed-{fmt}-{h}-{j // 2000}"
                chunk.append(doc)
                if j % (len(lines) // 6 + 1) == len(lines) // 12:
                    sample_ids.append(doc["_id"])
                if len(chunk) >= CHUNK:
                    _store(db, chunk, rollups, hosts)
                    stored, chunk = stored + len(chunk), []
    if chunk:
        _store(db, chunk, rollups, hosts)
        stored += len(chunk)
    phases = {"logs": round(time.monotonic() - began, 1)}
    now = datetime.now(UTC)
    docs = [{"_id": key, "t": m.minute, "host": m.host, "app": m.app, "level": m.level, "n": m.n, "u": now}
            for key, m in rollups.items()]
    for i in range(0, len(docs), CHUNK):
        db["rollups"].insert_many(docs[i:i + CHUNK], ordered=False)
    db["hosts"].insert_many([_host_document(h) for h in hosts.values()])
    phases["rollups_hosts"] = round(time.monotonic() - began - sum(phases.values()), 1)
    for name, models in indexes.items():
        for model in models:
            db[name].create_indexes([model])
    phases["indexes"] = round(time.monotonic() - began - sum(phases.values()), 1)
    manifest = {"_id": "seed", "key": key, "anchor": anchor, "stored": stored, "rollups": len(docs),
                "sample_ids": sample_ids, "seed_seconds": round(time.monotonic() - began, 1),
                "seed_phases_s": phases}
    db["bench_seed"].insert_one(manifest)
    client.close()
    return {**manifest, "reused": False}


def _store(db, chunk: list[dict], rollups: dict[str, MinuteCount], hosts: dict[str, HostCount]) -> None:
    """Insert `chunk` into `logs` and add its counts, as `consumer.tally` makes them, to `rollups` and `hosts`."""
    db["logs"].insert_many(chunk, ordered=False)
    counts = tally(chunk)
    for m in counts.minutes:
        seen = rollups.get(m.key)
        rollups[m.key] = m if seen is None else replace(seen, n=seen.n + m.n)
    for h in counts.hosts:
        seen = hosts.setdefault(h.host, HostCount(h.host, first_seen=h.first_seen, last_seen=h.last_seen))
        seen.records += h.records
        seen.errors += h.errors
        seen.first_seen, seen.last_seen = min(seen.first_seen, h.first_seen), max(seen.last_seen, h.last_seen)
        if h.last_error is not None:
            seen.last_error = h.last_error if seen.last_error is None else max(seen.last_error, h.last_error)
        seen.apps |= h.apps
        seen.sources |= h.sources


def _host_document(h: HostCount) -> dict:
    """The `hosts` document the consumer's upserts leave for `h` (without their guard list)."""
    doc = {"_id": h.host, "records": h.records, "errors": h.errors, "first_seen": h.first_seen,
           "last_seen": h.last_seen, "apps": sorted(h.apps), "sources": sorted(h.sources)}
    if h.last_error is not None:
        doc["last_error"] = h.last_error
    return doc


def requests(anchor: datetime, sample_ids: list[str]) -> dict[str, list[str]]:
    """Per query, the request paths to time, warm-up first."""
    def window(i: int, hours: int) -> dict[str, str]:
        until = anchor - timedelta(seconds=37 * i)
        return {"since": _iso(until - timedelta(hours=hours)), "until": _iso(until)}

    def logs(i: int, **filters: str) -> str:
        return f"/api/logs?{urlencode({**window(i, 1), **filters, 'limit': 100})}"

    n = WARMUP + REQUESTS
    return {
        "newest_page": [logs(i) for i in range(n)],
        "host_level": [logs(i, host=HOSTS[i % len(HOSTS)], level="error") for i in range(n)],
        "text_search": [logs(i, q=TEXT[i % len(TEXT)]) for i in range(n)],
        "histogram_24h": [f"/api/histogram?{urlencode(window(i, 24))}" for i in range(n)],
        **{name: [logs(i, q=q) for i in range(n)] for name, q in QUERY_LANGUAGE.items()},
        "histogram_24h_field": [f"/api/histogram?{urlencode({**window(i, 24), 'q': FIELD_HISTOGRAM})}"
                                for i in range(n)],
        "histogram_24h_field_equality": [f"/api/histogram?{urlencode({**window(i, 24), 'q': 'status:503'})}"
                                         for i in range(n)],
        "context": [f"/api/logs/{quote(sample_ids[i % len(sample_ids)])}/context?before=20&after=20"
                    for i in range(n)],
    }


def timed_get(port: int, path: str, token: str) -> tuple[float, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"GET {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from None
    return (time.perf_counter() - began) * 1000, body


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def _server(ctx: Context, uri: str, run_dir: Path, server: str, token: str) -> tuple[OpslogProcess, int]:
    port = free_port()
    cfg = write_config(run_dir / f"web-{server}.yaml", {
        "mongo": {"uri": f"{uri}/{DATABASE}"},
        "webui": {"listen": f"127.0.0.1:{port}", "auth": "password", "api_tokens": [token],
                  "secret_key": secrets.token_hex(16)},
        "log_level": "warning"})
    web = OpslogProcess(ctx, "web", cfg)
    if server == "werkzeug":
        web.argv = [sys.executable, "-c", WERKZEUG_SERVE, str(cfg)]
    return web, port


def measure(ctx: Context, uri: str, manifest: dict, run_dir: Path) -> dict[str, dict]:
    """Per server, its figures. Both serve at once and each request goes to one then the other
    (the order alternating), so the machine's noise falls on both alike."""
    token = secrets.token_urlsafe(24)
    figures: dict[str, dict] = {name: {} for name in SERVERS}
    with ExitStack() as stack:
        ports: dict[str, int] = {}
        webs: dict[str, OpslogProcess] = {}
        for name in SERVERS:
            web, ports[name] = _server(ctx, uri, run_dir, name, token)
            webs[name] = stack.enter_context(web)
        for name, web in webs.items():
            try:
                wait_until(partial(_healthy, ports[name]), 60, interval=0.1, alive=web.alive, what=f"{name} answering")
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}; the web UI said:\n{web.log_tail()}") from None
        anchor = manifest["anchor"].replace(tzinfo=UTC)
        queries = requests(anchor, manifest["sample_ids"])
        for query, paths in queries.items():
            times: dict[str, list[float]] = {name: [] for name in SERVERS}
            last = b""
            failed: dict[str, list[str]] = {name: [] for name in SERVERS}
            for i, path in enumerate(paths):
                for name in SERVERS if i % 2 == 0 else reversed(SERVERS):
                    try:
                        elapsed, answer = timed_get(ports[name], path, token)
                    except RuntimeError as exc:  # a query-language query past query_timeout: say so, go on
                        failed[name].append(str(exc)[-200:])
                        continue
                    last = answer
                    if i >= WARMUP:
                        times[name].append(elapsed)
            for name, ms in times.items():
                figures[name][query] = _summary(ms, failed[name])
            if query.startswith("histogram_24h"):
                answer = orjson.loads(last) if last else {}
                for name in SERVERS:
                    figures[name][query]["counted"] = sum(_bucket_total(b) for b in answer.get("buckets", []))
                    figures[name][query]["complete"] = answer.get("complete")
                    figures[name][query]["text_filter_applied"] = answer.get("text_filter_applied")
            elif query.startswith("q_"):
                answer = orjson.loads(last) if last else {}
                for name in SERVERS:
                    figures[name][query]["records"] = len(answer.get("records", []))
                    figures[name][query]["partial"] = "searched_to" in answer
        bursts: dict[str, list[dict]] = {name: [] for name in SERVERS}
        for burst in range(BURSTS):
            for name in SERVERS if burst % 2 == 0 else reversed(SERVERS):
                bursts[name].append(concurrent(ports[name], token, queries["newest_page"]))
        for name, web in webs.items():
            figures[name]["concurrent_newest_page"] = {
                "requests_s": round(sum(b["requests_s"] for b in bursts[name]) / BURSTS, 1),
                "p50_ms": round(sum(b["p50_ms"] for b in bursts[name]) / BURSTS, 1),
                "p95_ms": round(sum(b["p95_ms"] for b in bursts[name]) / BURSTS, 1),
                "clients": CLIENTS, "requests": sum(b["requests"] for b in bursts[name])}
            web.tree.sample()
            figures[name]["web_rss_mib"] = round(web.tree.rss_mib, 1)
    return figures


def _summary(ms: list[float], failed: list[str]) -> dict:
    out: dict = {"p50_ms": round(percentile(ms, 50), 1) if ms else None,
                 "p95_ms": round(percentile(ms, 95), 1) if ms else None,
                 "max_ms": round(max(ms), 1) if ms else None, "requests": len(ms)}
    if failed:
        out["failed"] = len(failed)
        out["failure"] = failed[0]
    return out


def query_language(figures: dict) -> dict:
    """Each query-language figure's p95 over the bare term's and over no query's, same server, same run."""
    bare, plain = figures["text_search"]["p95_ms"], figures["newest_page"]["p95_ms"]
    out = {}
    for name in (*QUERY_LANGUAGE, "histogram_24h_field", "histogram_24h_field_equality"):
        fig = figures.get(name)
        if fig is None:
            continue
        p95 = fig["p95_ms"]
        out[name] = {"p95_ms": p95, "target_p95_ms": TARGET_MS[name],
                     "meets_target": p95 is not None and not fig.get("failed") and p95 <= TARGET_MS[name],
                     "vs_bare_term_p95": round(p95 / bare, 2) if bare and p95 else None,
                     "vs_no_query_p95": round(p95 / plain, 2) if plain and p95 else None}
        if fig.get("failed"):
            out[name]["failed"] = fig["failed"]
    return out


def field_index_phase(ctx: Context, uri: str, manifest: dict, run_dir: Path, name: str,
                      models: list[IndexModel]) -> dict:
    """Build `models` on logs (timed), serve, time the field queries and their baselines, drop `models`."""
    client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
    logs = client[DATABASE]["logs"]
    began = time.monotonic()
    try:
        logs.create_indexes(models)
    except pymongo.errors.OperationFailure as exc:
        client.close()
        return {"not_supported": str(exc)[:300]}
    out: dict = {"index_build_s": round(time.monotonic() - began, 1)}
    token = secrets.token_urlsafe(24)
    try:
        web, port = _server(ctx, uri, run_dir, f"waitress-{name}", token)
        with web:
            wait_until(partial(_healthy, port), 60, interval=0.1, alive=web.alive, what=f"{name} answering")
            queries = requests(manifest["anchor"].replace(tzinfo=UTC), manifest["sample_ids"])
            for query in ("newest_page", "text_search", *FIELD_QUERIES):
                times: list[float] = []
                failed: list[str] = []
                last = b"{}"
                for i, path in enumerate(queries[query]):
                    try:
                        elapsed, last = timed_get(port, path, token)
                    except RuntimeError as exc:
                        failed.append(str(exc)[-200:])
                        continue
                    if i >= WARMUP:
                        times.append(elapsed)
                out[query] = _summary(times, failed)
                if query.startswith("histogram"):
                    out[query]["text_filter_applied"] = orjson.loads(last).get("text_filter_applied")
        out["query_language"] = query_language(out)
    finally:
        for model in models:
            logs.drop_index(model.document["name"])
        client.close()
    return out


def insert_cost(uri: str, models: dict[str, list[IndexModel]]) -> dict:
    """Seeded documents inserted into a scratch collection under each set of indexes (docs/s), and the
    field catalogue's tally of them (CPU µs per record)."""
    from consumer.store.catalogue import tally_fields

    client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
    db = client[DATABASE]
    docs = list(db["logs"].find({}, limit=INSERT_SAMPLE))
    out: dict = {"documents": len(docs)}
    began = time.process_time()
    tally_fields(docs)
    out["catalogue_tally_cpu_us_per_record"] = round((time.process_time() - began) / len(docs) * 1e6, 2)
    for name, indexes in models.items():
        scratch = db[f"bench_insert_{name}"]
        scratch.drop()
        if indexes:
            scratch.create_indexes(indexes)
        began = time.monotonic()
        for i in range(0, len(docs), 1000):
            scratch.insert_many(docs[i:i + 1000], ordered=False)
        out[f"{name}_docs_s"] = round(len(docs) / (time.monotonic() - began))
        scratch.drop()
    base = out.get("consumer_indexes_docs_s")
    for name in models:
        if base and name != "consumer_indexes":
            out[f"{name}_vs_consumer_indexes"] = round(out[f"{name}_docs_s"] / base, 3)
    client.close()
    return out


def concurrent(port: int, token: str, paths: list[str]) -> dict:
    """CLIENTS clients at once, each sending CLIENT_REQUESTS of `paths` back to back."""
    def client(c: int) -> list[float]:
        return [timed_get(port, paths[(c + i) % len(paths)], token)[0] for i in range(CLIENT_REQUESTS)]

    began = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        times = [t for one in pool.map(client, range(CLIENTS)) for t in one]
    elapsed = time.perf_counter() - began
    return {"requests_s": round(len(times) / elapsed, 1), "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1), "clients": CLIENTS, "requests": len(times)}


def _bucket_total(bucket: dict) -> int:
    count = bucket.get("count")
    if isinstance(count, int):
        return count
    return sum(v for v in (bucket.get("levels") or {}).values() if isinstance(v, int))


def run(ctx: Context) -> dict:
    try:
        from webui import create_app  # noqa: F401 - only asks whether the web UI exists yet
    except ImportError as exc:
        return {"not_available": f"webui.create_app is not importable yet ({exc})"}
    count = env_int("BENCH_WEBUI_RECORDS", 1_000_000)
    cached = env_int("BENCH_WEBUI_CACHE", 1) != 0
    base = CACHE_DIR / "webui-db" if cached else ctx.work / "webui-db"
    run_dir = ctx.work / "webui"
    run_dir.mkdir(parents=True, exist_ok=True)
    from consumer.store.indexes import LOG_INDEXES, WILDCARD_INDEX, field_indexes

    fields = field_indexes(("status", "duration_ms"))
    with MongoServer(base) as server:
        manifest = seed(ctx, server.uri, count)
        by_server = measure(ctx, server.uri, manifest, run_dir)
        figures = {**by_server["waitress"], "werkzeug": by_server["werkzeug"]}
        figures["query_language"] = query_language(by_server["waitress"])
        phases = {
            "insert": partial(insert_cost, server.uri, {"consumer_indexes": LOG_INDEXES,
                                                        "with_field_indexes": LOG_INDEXES + fields,
                                                        "with_wildcard_index": [*LOG_INDEXES, WILDCARD_INDEX]}),
            "mongo_field_indexes": partial(field_index_phase, ctx, server.uri, manifest, run_dir, "fields", fields),
            "wildcard_index": partial(field_index_phase, ctx, server.uri, manifest, run_dir, "wildcard",
                                      [WILDCARD_INDEX]),
        }
        figures["field_indexes"] = {}
        for name, phase in phases.items():
            try:
                figures["field_indexes"][name] = phase()
            except Exception as exc:  # noqa: BLE001 - one phase failing keeps the figures measured so far
                figures["field_indexes"][name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if not cached:
        shutil.rmtree(base, ignore_errors=True)
    return {"records": manifest["stored"], "rollups": manifest["rollups"], "window_anchor": _iso(manifest["anchor"]
            .replace(tzinfo=UTC)), "seeded_now": not manifest["reused"], "seed_seconds": manifest["seed_seconds"],
            "seed_phases_s": manifest.get("seed_phases_s"),
            **figures}
