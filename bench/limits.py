"""The machine's ceilings, measured in the same run as the stages compared to them.

- `cat_mib_s`: `cat FILE > /dev/null` on the nginx file, warm page cache: the
  fastest the file can be read.
- `pika_batched_lines_s`: a bare pika publisher (no opslog code) sending the
  same lines, 1,000 per message joined by newlines, persistent, each message
  confirmed before the next, to a durable queue of the type opslog declares
  (quorum) on the private node: the most a one-connection confirmed publisher
  gets through this broker. `pika_classic_lines_s` is the same into a classic
  queue, the kind the syslog-ng peer publishes to.
- `db_insert_docs_s`: `insert_many(ordered=False)` of 5,000 documents at a time,
  documents exactly as the consumer builds them (`common.record.to_document`),
  into a fresh collection with the same indexes as opslog's `logs`
  (`consumer.store.LOG_INDEXES`): the database's own rate for what the consumer
  stores. `db_insert_noindex_docs_s` is the same with only the `_id` index.
  `db_insert_client_cpu_us_per_record`: the inserting thread's CPU per document
  in the indexed runs, what pymongo itself costs to encode and send them: the
  part of the consumer's CPU that any client writing these documents pays.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import NamedTuple

import pymongo

from bench.context import Context
from bench.measure import ProcessTree, median
from bench.queues import Broker
from bench.records import documents, records

LINES_PER_MESSAGE = 1000
DOCS_PER_INSERT = 5000
QUEUE = "bench.limits"


def cat_mib_s(path: str, runs: int) -> list[float]:
    size_mib = _size_mib(path)
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    rates = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
        rates.append(size_mib / (time.perf_counter() - began))
    return rates


def _size_mib(path: str) -> float:
    return os.path.getsize(path) / (1 << 20)


def _messages(path: str) -> tuple[list[bytes], int]:
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    bodies = [b"\n".join(lines[i:i + LINES_PER_MESSAGE]) for i in range(0, len(lines), LINES_PER_MESSAGE)]
    return bodies, len(lines)


def pika_batched(ctx: Context, quorum: bool) -> list[dict[str, float]]:
    bodies, lines = _messages(ctx.path("nginx_combined"))
    results = []
    with Broker(ctx.amqp_url) as broker:
        for _ in range(ctx.runs):
            broker.delete([QUEUE])
            broker.declare_queue(QUEUE, quorum=quorum)
            node = ProcessTree(ctx.broker_pid).sample() if ctx.broker_pid else None
            node_cpu = node.cpu_s if node else 0.0
            cpu, began = time.process_time(), time.perf_counter()
            broker.publish_confirmed(QUEUE, bodies)
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
            if broker.depth(QUEUE) != len(bodies):
                raise RuntimeError(f"{QUEUE} holds {broker.depth(QUEUE)} messages, expected {len(bodies)}")
            run = {"lines_s": lines / elapsed, "cpu_s_per_mline": cpu * 1e6 / lines}
            if node:
                run["broker_cpu_s_per_mline"] = (node.sample().cpu_s - node_cpu) * 1e6 / lines
            results.append(run)
        broker.delete([QUEUE])
    return results


class InsertRun(NamedTuple):
    docs_s: float
    client_cpu_us: float  # the inserting thread's CPU per document: pymongo's encoding and sending


def db_insert(mongo_uri: str, docs: list[dict], indexes: list, runs: int) -> list[InsertRun]:
    """One InsertRun per run; `indexes` are pymongo IndexModels created before inserting."""
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True, journal=True)  # as the consumer writes
    collection = client["bench_limits"]["logs"]
    results = []
    try:
        for _ in range(runs):
            collection.drop()
            if indexes:
                collection.create_indexes(indexes)
            began, cpu = time.perf_counter(), time.thread_time()
            for start in range(0, len(docs), DOCS_PER_INSERT):
                # insert_many adds nothing to our dicts: they already carry their _id
                collection.insert_many(docs[start:start + DOCS_PER_INSERT], ordered=False)
            results.append(InsertRun(len(docs) / (time.perf_counter() - began),
                                     (time.thread_time() - cpu) * 1e6 / len(docs)))
    finally:
        client.drop_database("bench_limits")
        client.close()
    return results


def nginx_documents(ctx: Context) -> list[dict]:
    return documents(records(ctx.path("nginx_combined"), "nginx_combined", ctx.db_docs))


def run(ctx: Context) -> dict:
    from consumer.store import LOG_INDEXES

    cat = cat_mib_s(ctx.path("nginx_combined"), ctx.runs)
    quorum = pika_batched(ctx, quorum=True)
    classic = pika_batched(ctx, quorum=False)
    docs = nginx_documents(ctx)
    indexed = db_insert(ctx.mongo_uri, docs, LOG_INDEXES, ctx.runs)
    bare = db_insert(ctx.mongo_uri, docs, [], ctx.runs)
    return {
        "cat_mib_s": round(median(cat)),
        "pika_batched_lines_s": round(median(r["lines_s"] for r in quorum)),
        "pika_cpu_s_per_mline": round(median(r["cpu_s_per_mline"] for r in quorum), 2),
        "pika_broker_cpu_s_per_mline": round(median(r.get("broker_cpu_s_per_mline", 0) for r in quorum), 2),
        "pika_classic_lines_s": round(median(r["lines_s"] for r in classic)),
        "db_insert_docs_s": round(median(r.docs_s for r in indexed)),
        "db_insert_noindex_docs_s": round(median(r.docs_s for r in bare)),
        "db_insert_client_cpu_us_per_record": round(median(r.client_cpu_us for r in indexed), 2),
        "db_docs_per_run": ctx.db_docs,
        "db_indexes": [m.document["name"] for m in LOG_INDEXES],
        "runs": {"cat_mib_s": [round(x) for x in cat],
                 "pika_batched_lines_s": [round(r["lines_s"]) for r in quorum],
                 "pika_classic_lines_s": [round(r["lines_s"]) for r in classic],
                 "db_insert_docs_s": [round(r.docs_s) for r in indexed],
                 "db_insert_noindex_docs_s": [round(r.docs_s) for r in bare]},
    }
