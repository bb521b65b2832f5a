"""End to end: file -> shipper -> broker -> consumer -> database.

One `opslog ship` and one `opslog consume`, default settings except that the
shipper scans its glob every 0.1 s instead of every 1 s, so a new file is
picked up at once and the clock measures the pipeline, not the scan period.

- Throughput: both processes start first, on an empty watched directory. Once
  the consumer is attached and the shipper's /healthz reports its broker
  connection up, a file
  of BENCH_DB_DOCS nginx lines is renamed into the directory and the clock
  starts; it stops when the consumer's `opslog_consumer_records_stored` reaches
  every line (the database is then checked to hold each one). The database
  being the slowest hop, this is compared with the slowest stage alone.
- Latency: a file grows at a steady 2,000 lines/s for BENCH_LATENCY_S seconds
  (default 20) after a warm-up. Each line's write time (after flush) is
  recorded; the database is polled every 20 ms for documents of that file by
  (host, source, offset) (the `context` index), and a line's latency is the
  start of the first poll that finds its document minus its write time
  (within one poll period plus one query).
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pymongo

from bench.consumer_stage import Consumers, base_config, clear_topology, wait_attached
from bench.context import Context, env_int
from bench.measure import median, percentile, wait_until
from bench.procs import OpslogProcess, write_config
from bench.queues import Broker
from bench.records import BENCH_HOST
from common.localservices import free_port

RATE = 2000          # lines/s for the latency run
TICK = 0.01          # the writer appends RATE * TICK lines this often
WARMUP_LINES = 200
POLL = 0.02
SCAN_INTERVAL = 0.1


class Pipeline:
    """One shipper watching `watch_dir/*.log` and one consumer, on a fresh database."""

    def __init__(self, ctx: Context, run_dir: Path, database: str):
        self.ctx, self.database = ctx, database
        self.watch_dir = run_dir / "logs"
        self.watch_dir.mkdir(parents=True)
        self.ship_port = free_port()
        cfg = base_config(ctx, database)
        cfg["shipper"] = {"host": BENCH_HOST, "state_dir": str(run_dir / "state"), "scan_interval": SCAN_INTERVAL,
                          "metrics_listen": f"127.0.0.1:{self.ship_port}",
                          "inputs": [{"paths": [str(self.watch_dir / "*.log")], "app": "nginx",
                                      "format": "nginx_combined"}]}
        self.shipper = OpslogProcess(ctx, "ship", write_config(run_dir / "ship.yaml", cfg))
        self.consumers = Consumers(ctx, 1, database, run_dir)
        self.client: pymongo.MongoClient = pymongo.MongoClient(ctx.mongo_uri)
        self.logs = self.client[database]["logs"]

    def __enter__(self) -> Pipeline:
        self.client.drop_database(self.database)
        self.broker = Broker(self.ctx.amqp_url)
        clear_topology(self.broker)
        self.consumers.start()
        self.shipper.start()
        try:
            wait_attached(self.broker, self.consumers)
            wait_until(self._shipper_connected, 60, interval=0.1, alive=self.shipper.alive,
                       what="shipper connected to the broker")
        except (RuntimeError, TimeoutError) as exc:
            self.__exit__()
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from None
        return self

    def _shipper_connected(self) -> bool:
        """/healthz answers 200 once the shipper's broker connection is up (503 before)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ship_port}/healthz", timeout=1):
                return True
        except OSError:
            return False

    def stored(self) -> float:
        return self.consumers.stored()

    def alive(self) -> bool:
        return self.shipper.alive() and self.consumers.alive()

    def log_tail(self) -> str:
        return f"shipper:\n{self.shipper.log_tail(1000)}\nconsumer:\n{self.consumers.log_tail()}"

    def __exit__(self, *exc: object) -> None:
        self.shipper.stop()
        self.consumers.stop()
        clear_topology(self.broker)
        self.broker.close()
        self.client.drop_database(self.database)
        self.client.close()


def throughput_run(ctx: Context, run_dir: Path) -> float:
    count = ctx.db_docs
    staged = run_dir / "access.log.staged"
    with open(ctx.path("nginx_combined"), "rb") as src, open(staged, "wb") as dst:
        for i, line in enumerate(src):
            if i >= count:
                break
            dst.write(line)
    with Pipeline(ctx, run_dir, "bench_e2e") as pipe:
        began = time.monotonic()
        os.replace(staged, pipe.watch_dir / "access.log")
        try:
            finished = wait_until(lambda: pipe.stored() >= count, timeout=60 + count / 500, interval=0.1,
                                  alive=pipe.alive, what=f"{count} lines stored end to end")
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{pipe.log_tail()}") from None
        stored = pipe.logs.count_documents({})
    if stored != count:
        raise RuntimeError(f"end to end: the database holds {stored} documents for {count} lines")
    return count / (finished - began)


class SteadyWriter(threading.Thread):
    """Appends lines to `path` at RATE lines/s; `written[offset]` is each line's write time."""

    def __init__(self, path: Path, lines: list[bytes]):
        super().__init__(name="steady-writer", daemon=True)
        self.path, self.lines = path, lines
        self.written: dict[int, float] = {}
        self.offsets: list[int] = []

    def run(self) -> None:
        per_tick = max(1, int(RATE * TICK))
        offset = self.path.stat().st_size if self.path.exists() else 0
        next_tick = time.monotonic()
        with open(self.path, "ab", buffering=0) as out:
            for start in range(0, len(self.lines), per_tick):
                chunk = self.lines[start:start + per_tick]
                out.write(b"".join(chunk))
                now = time.monotonic()
                for line in chunk:
                    self.written[offset] = now
                    self.offsets.append(offset)
                    offset += len(line)
                next_tick += TICK
                time.sleep(max(0.0, next_tick - time.monotonic()))


def latency_run(ctx: Context, run_dir: Path, seconds: int) -> dict[str, float]:
    with open(ctx.path("nginx_combined"), "rb") as src:
        pool = list(itertools.islice(src, 50_000))
    needed = WARMUP_LINES + RATE * seconds
    lines = [pool[i % len(pool)] for i in range(needed)]
    with Pipeline(ctx, run_dir, "bench_latency") as pipe:
        path = pipe.watch_dir / "access.log"
        path.write_bytes(b"".join(lines[:WARMUP_LINES]))
        try:
            wait_until(lambda: pipe.stored() >= WARMUP_LINES, 60, interval=0.1, alive=pipe.alive,
                       what="warm-up lines stored")
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{pipe.log_tail()}") from None
        source = str(path)
        writer = SteadyWriter(path, lines[WARMUP_LINES:])
        writer.start()
        latencies: list[float] = []
        seen: set[int] = set()
        low = 0  # index into writer.offsets of the oldest line not yet seen
        deadline = time.monotonic() + seconds + 60
        while time.monotonic() < deadline:
            if not writer.is_alive() and low >= len(writer.offsets):
                break
            if low < len(writer.offsets):
                polled = time.monotonic()
                for doc in pipe.logs.find({"host": BENCH_HOST, "source": source,
                                           "offset": {"$gte": writer.offsets[low]}}, {"offset": 1, "_id": 0}):
                    offset = doc["offset"]
                    if offset not in seen and offset in writer.written:
                        seen.add(offset)
                        latencies.append((polled - writer.written[offset]) * 1000)
                while low < len(writer.offsets) and writer.offsets[low] in seen:
                    low += 1
            time.sleep(POLL)
        writer.join()
    missing = len(writer.offsets) - len(latencies)
    if missing:
        raise RuntimeError(f"latency run: {missing} of {len(writer.offsets)} lines never became visible")
    return {"p50": round(percentile(latencies, 50), 1), "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies), 1), "lines": len(latencies), "rate_lines_s": RATE}


def run(ctx: Context) -> dict:
    base = ctx.work / "e2e"
    shutil.rmtree(base, ignore_errors=True)
    rates = []
    for i in range(ctx.runs):
        run_dir = base / f"throughput-{i}"
        run_dir.mkdir(parents=True)
        rates.append(throughput_run(ctx, run_dir))
    seconds = env_int("BENCH_LATENCY_S", 20)
    latency = latency_run(ctx, base / "latency", seconds)
    shutil.rmtree(base, ignore_errors=True)
    return {"lines_s": round(median(rates)), "lines_per_run": ctx.db_docs, "runs": [round(r) for r in rates],
            "latency_ms": latency, "latency_seconds": seconds}
