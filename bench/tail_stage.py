"""The live tail (issue 15, part 1): what arrival order costs the consumer, and how fast the tail goes.

- `consumer_arrival`: one `opslog consume` storing BENCH_DB_DOCS records as the consumer
  stage does, with arrival order (the default) and right after with `arrival_lease: 0` (none),
  pair by pair: `extra_cpu_us_per_record` is the median of the paired differences of CPU per
  record, `docs_s_ratio` the median of the paired throughput ratios (with / without).
- `json_lines_s`, `sse_lines_s`: `opslog web` (waitress) serving BENCH_DB_DOCS stored records
  from cursor 0: a script walking GET /api/tail in pages of 1,000, and one Server-Sent Events
  stream read to the end. The rate the tail can keep up with, the database being the limit.
- `browser`: the tail page in headless Chromium opened on that backlog (`?cursor=`): the rate
  its stream delivers lines into the page (`received_lines_s`), and what it shows of them
  (it shows at most about 1,000 lines/s by design and counts the rest, `shown`).
- `delay_ms`: shipper + consumer + web; a file grows at RATE (BENCH_TAIL_RATE) lines/s for BENCH_TAIL_DELAY_S
  seconds; an SSE client following the tail notes when each line arrives: p50/p95 of arrival
  minus write time (includes the shipper's and consumer's batching and the stream's 0.25 s poll).
  Beside it, `stored_p50/p95`: when a poll of the database every 20 ms first finds each line (the
  pipeline's own delay), and `tail_added_p50/p95`: the tail's part, from stored to delivered.
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pymongo

from bench.consumer_stage import RECORDS_PER_MESSAGE, one_run
from bench.context import Context, env_int
from bench.e2e_stage import WARMUP_LINES, Pipeline, SteadyWriter
from bench.measure import median, percentile, wait_until
from bench.procs import OpslogProcess, write_config
from bench.records import batches, documents, records
from common.localservices import free_port

RATE = env_int("BENCH_TAIL_RATE", 1000)  # lines/s of the delay run: below what the pipeline stores here
PAGE = 1000
POLL = 0.02


def consumer_cost(ctx: Context, base: Path) -> dict[str, Any]:
    recs = records(ctx.path("nginx_combined"), "nginx_combined", ctx.db_docs)
    bodies = list(batches(recs, RECORDS_PER_MESSAGE))
    pairs = []
    for i in range(ctx.runs):
        on = one_run(ctx, 1, bodies, len(recs), _fresh(base / f"on-{i}"))
        off = one_run(ctx, 1, bodies, len(recs), _fresh(base / f"off-{i}"), consumer={"arrival_lease": 0})
        pairs.append({"cpu_us_with": on["cpu_us_per_record"], "cpu_us_without": off["cpu_us_per_record"],
                      "docs_s_with": on["docs_s"], "docs_s_without": off["docs_s"]})
    return {"extra_cpu_us_per_record": round(median(p["cpu_us_with"] - p["cpu_us_without"] for p in pairs), 2),
            "cpu_ratio": round(median(p["cpu_us_with"] / p["cpu_us_without"] for p in pairs), 3),
            "docs_s_ratio": round(median(p["docs_s_with"] / p["docs_s_without"] for p in pairs), 3),
            "records_per_run": len(recs), "runs": pairs}


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


class Web:
    """`opslog web` (auth none, loopback) on `database`."""

    def __init__(self, ctx: Context, run_dir: Path, database: str):
        self.port = free_port()
        cfg = {"mongo": {"uri": f"{ctx.mongo_uri}/{database}"}, "log_level": "warning",
               "webui": {"listen": f"127.0.0.1:{self.port}", "auth": "none", "max_limit": PAGE}}
        self.proc = OpslogProcess(ctx, "web", write_config(run_dir / "web.yaml", cfg))
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Web:
        self.proc.start()
        wait_until(self._up, 60, interval=0.1, alive=self.proc.alive, what="opslog web answering")
        return self

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=1):
                return True
        except OSError:
            return False

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + path, timeout=60) as response:
            return orjson.loads(response.read())

    def events(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path, headers={"Accept": "text/event-stream"})
        return urllib.request.urlopen(request, timeout=60)

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()


def read_events(stream: Any, on_records: Any) -> None:
    """Call `on_records(records)` per `records` event until `on_records` returns True or the stream ends."""
    event, data = "", b""
    for raw in stream:
        line = raw.rstrip(b"\n")
        if line.startswith(b"event: "):
            event = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
        elif not line:
            if event == "records" and on_records(orjson.loads(data)["records"]):
                return
            event, data = "", b""


def store_backlog(ctx: Context, database: str) -> int:
    from common.config import MongoConfig
    from consumer.store import Message, Store

    store = Store(MongoConfig(uri=f"{ctx.mongo_uri}/{database}"))
    store.init()
    docs = documents(records(ctx.path("nginx_combined"), "nginx_combined", ctx.db_docs))
    for i in range(0, len(docs), RECORDS_PER_MESSAGE):
        store.write([Message(f"bench-{i}", [{**d, "batch": f"bench-{i}"} for d in docs[i:i + RECORDS_PER_MESSAGE]])])
    store.close()
    return len(docs)


def api_rates(ctx: Context, web: Web, count: int) -> dict[str, float]:
    start = "dDA"  # position 0: the whole backlog
    began, cursor, got = time.monotonic(), start, 0
    while got < count:
        body = web.get(f"/api/tail?cursor={cursor}&limit={PAGE}")
        got += len(body["records"])
        cursor = body["next_cursor"]
        if body["caught_up"]:
            break
    json_s = time.monotonic() - began
    received = [0]

    def take(recs: list) -> bool:
        received[0] += len(recs)
        return received[0] >= count

    began = time.monotonic()
    with web.events(f"/api/tail?cursor={start}") as stream:
        read_events(stream, take)
    sse_s = time.monotonic() - began
    if got != count or received[0] != count:
        raise RuntimeError(f"tail walked {got} (JSON) and {received[0]} (SSE) of {count} records")
    return {"json_lines_s": round(count / json_s), "sse_lines_s": round(count / sse_s)}


def browser_rate(web: Web, count: int) -> dict[str, Any]:
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="opslog-bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(web.base + "/tail?cursor=dDA")
        began = time.monotonic()
        received = "return Number(document.getElementById('tail').dataset.received || 0)"
        done = wait_until(lambda: driver.execute_script(received) >= count, 300, interval=0.05,
                          what="the page received the backlog")
        shown = driver.execute_script("return document.querySelectorAll('#tail tbody tr').length")
        notice = driver.execute_script("return document.getElementById('tail-sampling').textContent")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return {"received_lines_s": round(count / (done - began)), "lines": count, "shown": shown, "notice": notice}


def delay(ctx: Context, run_dir: Path, seconds: int) -> dict[str, Any]:
    with open(ctx.path("nginx_combined"), "rb") as src:
        pool = list(itertools.islice(src, 50_000))
    lines = [pool[i % len(pool)] for i in range(WARMUP_LINES + RATE * seconds)]
    with Pipeline(ctx, run_dir, "bench_tail_delay") as pipe, Web(ctx, run_dir, "bench_tail_delay") as web:
        path = pipe.watch_dir / "access.log"
        path.write_bytes(b"".join(lines[:WARMUP_LINES]))
        wait_until(lambda: pipe.stored() >= WARMUP_LINES, 60, interval=0.1, alive=pipe.alive, what="warm-up")
        cursor = web.get("/api/tail")["next_cursor"]
        arrived: dict[int, float] = {}
        total = RATE * seconds

        def take(recs: list) -> bool:
            now = time.monotonic()
            for rec in recs:
                arrived.setdefault(rec["offset"], now)
            return len(arrived) >= total

        stored: dict[int, float] = {}
        stop = threading.Event()

        def poll_stored() -> None:
            """The baseline: when each line is in the database at all (any position, block open or not)."""
            newest = int(pipe.logs.find_one(sort=[("arrival", -1)])["arrival"])
            while not stop.is_set():
                polled = time.monotonic()
                for doc in pipe.logs.find({"arrival": {"$gt": newest}}, {"offset": 1, "arrival": 1, "_id": 0}):
                    stored.setdefault(doc["offset"], polled)
                    newest = max(newest, doc["arrival"])
                time.sleep(POLL)

        with web.events(f"/api/tail?cursor={cursor}") as stream:
            reader = threading.Thread(target=read_events, args=(stream, take), daemon=True)
            poller = threading.Thread(target=poll_stored, daemon=True)
            reader.start()
            poller.start()
            writer = SteadyWriter(path, lines[WARMUP_LINES:])
            writer.start()
            writer.join()
            reader.join(timeout=seconds + 60)
            stop.set()
            poller.join()
    delays = [(arrived[o] - writer.written[o]) * 1000 for o in writer.offsets if o in arrived]
    if len(delays) != len(writer.offsets):
        raise RuntimeError(f"the tail delivered {len(delays)} of {len(writer.offsets)} lines")
    in_db = [(stored[o] - writer.written[o]) * 1000 for o in writer.offsets if o in stored]
    added = [(arrived[o] - stored[o]) * 1000 for o in writer.offsets if o in stored]
    return {"p50": round(percentile(delays, 50), 1), "p95": round(percentile(delays, 95), 1),
            "max": round(max(delays), 1), "lines": len(delays), "rate_lines_s": RATE,
            "stored_p50": round(percentile(in_db, 50), 1), "stored_p95": round(percentile(in_db, 95), 1),
            "tail_added_p50": round(percentile(added, 50), 1), "tail_added_p95": round(percentile(added, 95), 1)}


def run(ctx: Context) -> dict:
    base = _fresh(ctx.work / "tail")
    figures: dict[str, Any] = {"consumer_arrival": consumer_cost(ctx, base / "consumer")}
    database = "bench_tail"
    client: pymongo.MongoClient = pymongo.MongoClient(ctx.mongo_uri)
    client.drop_database(database)
    try:
        count = store_backlog(ctx, database)
        with Web(ctx, _fresh(base / "web"), database) as web:
            figures.update(api_rates(ctx, web, count))
            figures["browser"] = browser_rate(web, count)
    finally:
        client.drop_database(database)
        client.close()
    figures["delay_ms"] = delay(ctx, _fresh(base / "delay"), env_int("BENCH_TAIL_DELAY_S", 15))
    shutil.rmtree(base, ignore_errors=True)
    return figures
