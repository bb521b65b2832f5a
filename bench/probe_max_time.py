"""Does the database server honour maxTimeMS? (SecantusDB 0.7.0b3 does, checked coarsely.)

    python bench/probe_max_time.py --mongo-uri mongodb://127.0.0.1:27555

Fills a scratch collection with 50,000 documents, then runs an unindexed regex scan
without a limit, with maxTimeMS=5 on find and aggregate (expect ExecutionTimeout,
code 50), and under `pymongo.timeout(0.005)` as the web UI sends it (the client's
deadline may fire first: NetworkTimeout with `timeout` True). Prints what happened.
"""

from __future__ import annotations

import argparse
import time

import pymongo
from pymongo.errors import PyMongoError


def attempt(label: str, run) -> None:
    start = time.perf_counter()
    try:
        print(f"{label}: finished, {len(list(run()))} documents", end="")
    except PyMongoError as exc:
        print(f"{label}: {type(exc).__name__} code={getattr(exc, 'code', None)} timeout={exc.timeout}", end="")
    print(f" after {time.perf_counter() - start:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mongo-uri", required=True)
    parser.add_argument("--database", default="opslog_probe_max_time")
    args = parser.parse_args()
    with pymongo.MongoClient(args.mongo_uri, serverSelectionTimeoutMS=5000) as client:
        coll = client[args.database]["docs"]
        coll.drop()
        coll.insert_many([{"i": i, "message": "x" * 200 + str(i)} for i in range(50_000)])
        scan = {"message": {"$regex": "zzz", "$options": "i"}}
        attempt("find, no limit", lambda: coll.find(scan))
        attempt("find, maxTimeMS=5", lambda: coll.find(scan, max_time_ms=5))
        attempt("aggregate, maxTimeMS=5", lambda: coll.aggregate([{"$match": scan}], maxTimeMS=5))

        def under_deadline():
            with pymongo.timeout(0.005):
                return list(coll.find(scan))
        attempt("find under pymongo.timeout(0.005)", under_deadline)
        client.drop_database(args.database)


if __name__ == "__main__":
    main()
