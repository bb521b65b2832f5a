"""The consumer alone: broker -> database, with 1 and 2 `opslog consume` processes.

Each run gets a fresh database. The consumers start first, on opslog's own
topology, and the clock starts once the broker reports all of them attached;
then BENCH_DB_DOCS records of the nginx file (parsed as nginx_combined, made
into batches of 2,000 by `common.record.encode_batch`, as the shipper sends
them) are published with confirms, which takes a fraction of a second. Started
this way every consumer gets its share of the messages, instead of the first
one to connect taking a whole prefetch window of a pre-filled queue.

The clock stops when the consumers' own `opslog_consumer_records_stored`
counters (advanced only once the database stored the batch) add up to every
record; the database is then checked to hold each one. CPU is the consumers'
utime + stime over that same window, in µs per record; peak RSS is the largest
VmHWM among the processes. For one process, the baseline is a bare insert_many
of the same documents into a collection with the same indexes (as
`limits.db_insert_docs_s`), measured right after each run: `vs_raw_insert` is the
median of those paired ratios, steadier than a ratio of medians taken minutes
apart on a noisy machine. `raw_insert_client_cpu_us` is that baseline's own
client CPU per document (pymongo encoding and sending): the floor under
`cpu_us_per_record`, which adds taking the messages, decoding and counting.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pymongo

from bench.context import Context
from bench.limits import db_insert
from bench.measure import summarize, wait_until
from bench.procs import OpslogProcess, metric, write_config
from bench.queues import Broker
from bench.records import batches, documents, records
from common.localservices import free_port

PROCESSES = (1, 2)
RECORDS_PER_MESSAGE = 2000  # the shipper's default batch_max_records
EXCHANGE, QUEUE, DEAD = "opslog", "opslog.records", "opslog.dead"


def base_config(ctx: Context, database: str) -> dict:
    """The private broker and a database of the private server; opslog's defaults otherwise."""
    return {
        "amqp": {"url": ctx.amqp_url, "exchange": EXCHANGE, "queue": QUEUE, "dead_letter_queue": DEAD},
        "mongo": {"uri": f"{ctx.mongo_uri}/{database}"},
        "log_level": "warning",
    }


def config(ctx: Context, database: str, metrics_port: int, consumer: dict | None = None) -> dict:
    return {**base_config(ctx, database), "consumer": {"metrics_listen": f"127.0.0.1:{metrics_port}",
                                                       **(consumer or {})}}


def clear_topology(broker: Broker) -> None:
    broker.delete([QUEUE, DEAD], [EXCHANGE, EXCHANGE + ".dlx"])


class Consumers:
    """`n` consumer processes on one database, each with its metrics port."""

    def __init__(self, ctx: Context, n: int, database: str, run_dir: Path, consumer: dict | None = None):
        self.ports = [free_port() for _ in range(n)]
        self.procs = [OpslogProcess(ctx, "consume", write_config(run_dir / f"consume-{i}.yaml",
                                                                  config(ctx, database, port, consumer)))
                      for i, port in enumerate(self.ports)]

    def start(self) -> Consumers:
        for proc in self.procs:
            proc.start()
        return self

    def stored(self) -> float:
        return sum(metric(port, "opslog_consumer_records_stored") for port in self.ports)

    def alive(self) -> bool:
        return all(p.alive() for p in self.procs)

    def sample(self) -> None:
        for proc in self.procs:
            proc.tree.sample()

    def cpu_s(self) -> float:
        return sum(p.tree.cpu_s for p in self.procs)

    def rss_mib(self) -> float:
        return max(p.tree.rss_mib for p in self.procs)

    def stop(self) -> list[int | None]:
        return [p.stop() for p in self.procs]

    def log_tail(self) -> str:
        return "\n".join(p.log_tail(1000) for p in self.procs)


def wait_attached(broker: Broker, consumers: Consumers, timeout: float = 60) -> None:
    try:
        wait_until(lambda: broker.consumers(QUEUE) >= len(consumers.procs), timeout, interval=0.1,
                   alive=consumers.alive, what="consumers attached to the queue")
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}; the consumers said:\n{consumers.log_tail()}") from None


def one_run(ctx: Context, n: int, bodies: list[bytes], count: int, run_dir: Path,
            consumer: dict | None = None) -> dict[str, float]:
    """`consumer`: settings over the defaults (the tail stage turns arrival order off for its baseline)."""
    database = f"bench_consume_{n}"
    client: pymongo.MongoClient = pymongo.MongoClient(ctx.mongo_uri)
    client.drop_database(database)
    consumers = Consumers(ctx, n, database, run_dir, consumer)
    with Broker(ctx.amqp_url) as broker:
        clear_topology(broker)
        consumers.start()
        try:
            wait_attached(broker, consumers)
            consumers.sample()
            cpu_before = consumers.cpu_s()
            began = time.monotonic()
            broker.publish_confirmed(QUEUE, bodies, [{"x-opslog-records": RECORDS_PER_MESSAGE}] * len(bodies))
            published = time.monotonic()
            try:
                finished = wait_until(lambda: consumers.stored() >= count, timeout=60 + count / 500, interval=0.25,
                                      alive=consumers.alive, what=f"{count} records stored by {n} consumer(s)")
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}; the consumers said:\n{consumers.log_tail()}") from None
            consumers.sample()
            cpu = consumers.cpu_s() - cpu_before
        finally:
            statuses = consumers.stop()
            clear_topology(broker)
    stored = client[database]["logs"].count_documents({})
    client.drop_database(database)
    client.close()
    if stored != count:
        raise RuntimeError(f"{n} consumer(s): the database holds {stored} documents for {count} records")
    if any(status != 0 for status in statuses):
        raise RuntimeError(f"consumer exit statuses {statuses} on SIGTERM:\n{consumers.log_tail()}")
    elapsed = finished - began
    return {"docs_s": count / elapsed, "seconds": elapsed, "publish_seconds": published - began,
            "cpu_us_per_record": cpu * 1e6 / count, "rss_mib": consumers.rss_mib()}


def run(ctx: Context) -> dict:
    from consumer.store import LOG_INDEXES

    base = ctx.work / "consumer"
    shutil.rmtree(base, ignore_errors=True)
    recs = records(ctx.path("nginx_combined"), "nginx_combined", ctx.db_docs)
    bodies = list(batches(recs, RECORDS_PER_MESSAGE))
    docs = documents(recs)
    figures: dict[str, object] = {"records_per_run": len(recs)}
    for n in PROCESSES:
        runs = []
        for i in range(ctx.runs):
            run_dir = base / f"{n}-{i}"
            run_dir.mkdir(parents=True)
            result = one_run(ctx, n, bodies, len(recs), run_dir)
            if n == 1:
                # The baseline right after each run: on a shared machine the database's
                # speed drifts within minutes, so the ratio the target is about is taken
                # pair by pair.
                raw = db_insert(ctx.mongo_uri, docs, LOG_INDEXES, 1)[0]
                result.update(raw_insert_docs_s=raw.docs_s, vs_raw_insert=result["docs_s"] / raw.docs_s,
                              raw_insert_client_cpu_us=raw.client_cpu_us)
            runs.append(result)
        figures[str(n)] = summarize(runs, digits=3)
    shutil.rmtree(base, ignore_errors=True)
    return figures
