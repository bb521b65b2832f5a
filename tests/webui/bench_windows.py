"""Wide search windows: seconds and database commands per request (issue 12, section 5).

    python tests/webui/bench_windows.py --mongo-uri mongodb://127.0.0.1:27555 [--records 20000] [--retention 400d]

Seeds `--records` records over the last 6 h (as `bench_api.py` does), then asks the
app in-process for windows a client could send: a 1-year window holding no record,
a 25-year window with `q=zzz` (matches nothing), and histograms over a year. Each
request's MongoDB commands are counted with a pymongo `CommandListener` on the
app's own client. A request still running after `--give-up` seconds is reported as such.

Figures (20,000 records over 6 h, SecantusDB 0.7.0b3, 2-core machine shared with other work):

    request                               before (76912c7)                 after, --retention 10000d
    1-year window, no record in it        28.0 s, 1,477 commands (1,466    0.01-0.04 s, 3 commands
                                          rollups finds), 200
    25-year window, q=zzz                 no answer after 40 s, 16,978     5-6 s, 21 commands, 200
                                          commands sent by then
    histogram over an empty year          400 (histograms: 92 days max)    0.3 s, 2 commands, 200
    histogram over the last year          400                              1.4-2.4 s, 6 commands, 200

Without `--retention` every one of these windows is now a 400 naming `since`, with no command sent.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pymongo
from pymongo import monitoring

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import seed  # noqa: E402

from common.config import Config, MongoConfig, WebConfig  # noqa: E402
from webui import create_app  # noqa: E402
from webui.queries import Store  # noqa: E402


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        coll = event.command.get(event.command_name)
        self.counts[f"{event.command_name}:{coll}" if isinstance(coll, str) else event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def measure(web, url: str, give_up: float, listener: Commands) -> dict:
    listener.counts.clear()
    out: dict = {}

    def run() -> None:
        response = web.get(url)
        out["status"], out["body"] = response.status_code, response.get_data()[:200].decode(errors="replace")

    start = time.perf_counter()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(give_up)
    seconds = round(time.perf_counter() - start, 2)
    result = {"url": url, "seconds": seconds, "commands": dict(listener.counts),
              "total_commands": sum(listener.counts.values())}
    if thread.is_alive():
        result["status"] = f"no answer after {give_up:.0f} s"
    else:
        result["status"], result["body"] = out["status"], out["body"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mongo-uri", required=True)
    parser.add_argument("--database", default="opslog_bench_windows")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--retention", default=None, help="mongo.retention for the app, e.g. 400d")
    parser.add_argument("--give-up", type=float, default=40.0)
    args = parser.parse_args()
    seeder = pymongo.MongoClient(args.mongo_uri, tz_aware=True)
    db = seeder[args.database]
    if db.logs.estimated_document_count() != args.records:
        seeder.drop_database(args.database)
        Store(db).ensure_indexes()
        seed(db, args.records, 6.0, random.Random(7))
    listener = Commands()
    client = pymongo.MongoClient(args.mongo_uri, tz_aware=True, event_listeners=[listener])
    mongo = {"uri": args.mongo_uri}
    if args.retention:
        from common.durations import parse_duration
        mongo["retention"] = parse_duration(args.retention)
    config = Config(mongo=MongoConfig(**mongo), webui=WebConfig(auth="none", secret_key="bench"))
    web = create_app(config, db=client[args.database]).test_client()
    urls = ["/api/logs?since=730d&until=365d",            # 1 year, no record in it
            "/api/logs?since=9125d&q=zzz",                # 25 years up to now, text that matches nothing
            "/api/histogram?since=730d&until=365d",        # a histogram over an empty year
            "/api/histogram?since=365d"]                   # a histogram over the last year
    results = [measure(web, url, args.give_up, listener) for url in urls]
    print(json.dumps(results, indent=1))
    client.close()
    seeder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
