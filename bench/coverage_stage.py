"""Per-file coverage (issue 15): what it costs the consumer per record, and what `opslog verify`
costs per million stored records.

- `consumer`: `opslog consume` (one process, as `consumer_stage.one_run`) storing the same
  BENCH_DB_DOCS nginx records twice per run, once in batches without coverage fields (as older
  shippers send them: nothing to merge) and once with each group's `file` and `lengths` (as
  shippers send them now: each batch's ranges merged and one coverage update per file). The
  two alternate, run after run, so the machine's drift hits both alike; `extra_cpu_us_per_record`
  is the median of the paired differences of the consumers' CPU per record (utime + stime).
- `in_process`: the same difference measured inside one process (its CPU time): `decode_documents`
  of the bodies with and without coverage fields, `batch_coverage` of the documents (the
  per-record part of the hook) and `apply_coverage`'s client CPU (one read and one update per file
  and batch, against the private database; the server's time is not this process's); steadier
  than the process figures, whose own noise is larger than the difference.
- `verify`: the records stored with `file`/`len` (the `logs` indexes, coverage's included), then
  `common.verify.walk` over the file: an index-only walk of (host, file, offset, len), timed,
  against the baseline of fetching the same documents whole.
"""

from __future__ import annotations

import shutil
import time
from statistics import median
from typing import Any

import pymongo

from bench.consumer_stage import RECORDS_PER_MESSAGE, one_run
from bench.context import Context
from bench.measure import summarize
from bench.records import BENCH_HOST, documents, records
from common.record import BatchBuilder, decode_documents, row
from tests.records import Record, encode_batch

FILE_ID = "bench-file-identity"


def covered_batches(recs: list[Record], lengths: list[int], size: int) -> list[bytes]:
    """Bodies as a coverage-aware shipper sends them: each group with its `file` and `lengths`."""
    bodies = []
    for start in range(0, len(recs), size):
        builder = BatchBuilder()
        shared = None
        rows: list[Any] = []
        lens: list[int] = []
        for r, n in zip(recs[start:start + size], lengths[start:start + size], strict=True):
            if (r.host, r.app, r.source, r.received_at) != shared:
                shared = (r.host, r.app, r.source, r.received_at)
                rows, lens = builder.file_group(*shared, FILE_ID)
            rows.append(row(r.id, r.offset, r.ts, r.message, r.level, r.fields, r.parse_error))
            lens.append(n)
        bodies.append(builder.encode())
    return bodies


def line_lengths(path: str, count: int) -> list[int]:
    out = []
    with open(path, "rb") as fh:
        for raw in fh:
            if len(out) >= count:
                break
            out.append(len(raw))
    return out


def in_process(ctx: Context, plain: list[bytes], covered: list[bytes], count: int,
               rounds: int = 5) -> dict[str, float]:
    from consumer.store.coverage import apply_coverage, batch_coverage

    def decode(bodies: list[bytes]) -> tuple[float, list[list[dict[str, Any]]]]:
        began = time.process_time()
        docs = [decode_documents(body)[0] for body in bodies]
        return time.process_time() - began, docs

    plain_s, with_s, merge_s = [], [], []
    for _ in range(rounds):
        plain_s.append(decode(plain)[0])
        seconds, docs = decode(covered)
        with_s.append(seconds)
        began = time.process_time()
        for batch in docs:
            batch_coverage(batch)
        merge_s.append(time.process_time() - began)
    per = 1e6 / count
    decode_extra = (median(with_s) - median(plain_s)) * per
    merge = median(merge_s) * per
    client: pymongo.MongoClient = pymongo.MongoClient(ctx.mongo_uri)
    apply_s = []
    try:
        for _ in range(rounds):
            client.drop_database("bench_coverage")
            collection = client["bench_coverage"]["coverage"]
            began = time.process_time()
            for batch in docs:  # the first batch creates the file's document, the others update it
                apply_coverage(collection, batch_coverage(batch))
            apply_s.append(time.process_time() - began - median(merge_s))
    finally:
        client.drop_database("bench_coverage")
        client.close()
    apply = median(apply_s) * per
    return {"decode_us_per_record": median(plain_s) * per, "decode_extra_us_per_record": decode_extra,
            "batch_coverage_us_per_record": merge, "apply_coverage_client_us_per_record": apply,
            "extra_us_per_record": decode_extra + merge + apply}


def verify_cost(ctx: Context, recs: list[Record], lengths: list[int]) -> dict[str, float]:
    from common.verify import walk
    from consumer.store import LOG_INDEXES

    client: pymongo.MongoClient = pymongo.MongoClient(ctx.mongo_uri)
    database = "bench_verify"
    client.drop_database(database)
    logs = client[database]["logs"]
    logs.create_indexes(LOG_INDEXES)
    docs = documents(recs)
    for doc, n in zip(docs, lengths, strict=True):
        doc["file"], doc["len"] = FILE_ID, n
    for start in range(0, len(docs), 5000):
        logs.insert_many(docs[start:start + 5000], ordered=False)
    walks, fetches = [], []
    try:
        for _ in range(ctx.runs):
            began = time.monotonic()
            ranges, walked = walk(logs, BENCH_HOST, FILE_ID)
            walks.append(time.monotonic() - began)
            if walked != len(docs) or len(ranges) != 1:
                raise RuntimeError(f"verify walked {walked} records into {len(ranges)} ranges, expected "
                                   f"{len(docs)} into 1")
            began = time.monotonic()
            fetched = sum(1 for _ in logs.find({"host": BENCH_HOST, "file": FILE_ID}).sort("offset", 1)
                          .batch_size(10_000))
            fetches.append(time.monotonic() - began)
            assert fetched == len(docs)
    finally:
        client.drop_database(database)
        client.close()
    per_million = 1e6 / len(docs)
    return {"records": len(docs), "walk_s_per_million": median(walks) * per_million,
            "walk_records_s": len(docs) / median(walks),
            "fetch_whole_s_per_million": median(fetches) * per_million,
            "walk_vs_fetch_whole": median(walks) / median(fetches)}


def run(ctx: Context) -> dict:
    base = ctx.work / "coverage"
    shutil.rmtree(base, ignore_errors=True)
    path = ctx.path("nginx_combined")
    recs = records(path, "nginx_combined", ctx.db_docs)
    lengths = line_lengths(path, len(recs))
    plain = [encode_batch(recs[i:i + RECORDS_PER_MESSAGE]) for i in range(0, len(recs), RECORDS_PER_MESSAGE)]
    covered = covered_batches(recs, lengths, RECORDS_PER_MESSAGE)
    pairs = []
    for i in range(ctx.runs):
        results = {}
        for name, bodies in (("without", plain), ("with", covered)) if i % 2 == 0 else (("with", covered),
                                                                                        ("without", plain)):
            run_dir = base / f"{name}-{i}"
            run_dir.mkdir(parents=True)
            results[name] = one_run(ctx, 1, bodies, len(recs), run_dir)
        pairs.append({"cpu_us_per_record_without": results["without"]["cpu_us_per_record"],
                      "cpu_us_per_record_with": results["with"]["cpu_us_per_record"],
                      "extra_cpu_us_per_record": results["with"]["cpu_us_per_record"]
                      - results["without"]["cpu_us_per_record"],
                      "docs_s_without": results["without"]["docs_s"], "docs_s_with": results["with"]["docs_s"],
                      "docs_s_with_vs_without": results["with"]["docs_s"] / results["without"]["docs_s"]})
    shutil.rmtree(base, ignore_errors=True)
    return {"records_per_run": len(recs), "consumer": summarize(pairs, digits=3),
            "in_process": {k: round(v, 3) for k, v in in_process(ctx, plain, covered, len(recs)).items()},
            "verify": {k: round(v, 3) for k, v in verify_cost(ctx, recs, lengths).items()}}
