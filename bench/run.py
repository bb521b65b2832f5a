"""`python -m bench.run` (`make bench`): the whole benchmark suite, side by side.

Generates the log files, starts a private RabbitMQ node and a private
MongoDB-compatible server under bench/work/, runs each stage, writes
bench/results.json and prints a short table. Every comparison is a ratio of
two figures measured in this same run: the machine is shared and noisy.

    BENCH_LINES=200000 BENCH_RUNS=3 python -m bench.run
    BENCH_STAGES=limits,peer python -m bench.run   # some stages; other results are kept

A stage that fails records {"error": ...} and the suite goes on; the exit
status is 1 if any stage failed.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from bench.context import BENCH_DIR, Context
from bench.generate import generate

RESULTS = BENCH_DIR / "results.json"
STAGES = {
    "limits": "bench.limits",
    "peer": "bench.peer",
    "shipper": "bench.shipper_stage",
    "journald": "bench.journald_stage",
    "consumer": "bench.consumer_stage",
    "coverage": "bench.coverage_stage",
    "e2e": "bench.e2e_stage",
    "webui": "bench.webui_stage",
    "tail": "bench.tail_stage",
    "alerts": "bench.alerts_stage",
}
README_MIN_LINES = 1_000_000  # smaller runs are quick checks: they do not replace the README's table
# what the stages read; bench.generate also makes java
FILE_FORMATS = ("nginx_combined", "json", "syslog", "cri", "logfmt")


def _version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as fh:
        mem_kib = int(next(line for line in fh if line.startswith("MemTotal:")).split()[1])
    from importlib.metadata import PackageNotFoundError, version
    try:
        secantus = version("secantusdb")
    except PackageNotFoundError:
        secantus = None
    return {
        "cores": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "rabbitmq": _version(["dpkg-query", "-W", "-f", "${Version}\n", "rabbitmq-server"]),
        "syslog_ng": _version(["dpkg-query", "-W", "-f", "${Version}\n", "syslog-ng-core"]),
        "secantusdb": secantus,
    }


def ratios(r: dict[str, Any]) -> dict[str, float]:
    """Each comparison as a ratio of two figures of this run; absent when either side is."""
    def get(*keys: str) -> float | None:
        node: Any = r
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node if isinstance(node, (int, float)) else None

    pairs = {
        "shipper_vs_syslog_ng": (get("shipper", "plain", "lines_s"), get("peer", "syslog_ng", "raw", "lines_s")),
        "shipper_parsed_vs_syslog_ng_parsed": (get("shipper", "nginx_combined", "lines_s"),
                                               get("peer", "syslog_ng", "parsed", "lines_s")),
        "shipper_cpu_vs_syslog_ng": (get("shipper", "plain", "cpu_s_per_mline"),
                                     get("peer", "syslog_ng", "raw", "cpu_s_per_mline")),
        "shipper_parsed_cpu_vs_syslog_ng_parsed": (get("shipper", "nginx_combined", "cpu_s_per_mline"),
                                                   get("peer", "syslog_ng", "parsed", "cpu_s_per_mline")),
        "shipper_vs_pika_batched": (get("shipper", "plain", "lines_s"), get("limits", "pika_batched_lines_s")),
        # issue 17's target: container logs and logfmt at least 0.8 of json
        "shipper_cri_vs_json": (get("shipper", "cri", "lines_s"), get("shipper", "json", "lines_s")),
        "shipper_logfmt_vs_json": (get("shipper", "logfmt", "lines_s"), get("shipper", "json", "lines_s")),
        # journal entries/s through the journald input over json lines/s, both of the journald stage's run
        "shipper_journald_vs_json": (get("journald", "journald", "lines_s"), get("journald", "json", "lines_s")),
        "consumer2_vs_raw_insert": (get("consumer", "2", "docs_s"), get("limits", "db_insert_docs_s")),
        # above 1: the pipeline here cannot sustain the latency run's rate, so its backlog grows
        "e2e_latency_rate_vs_e2e_throughput": (get("e2e", "latency_ms", "rate_lines_s"), get("e2e", "lines_s")),
    }
    # the web API on waitress (opslog web) over werkzeug's development server, same database and requests
    for query in ("newest_page", "host_level", "text_search", "histogram_24h", "context"):
        pairs[f"web_{query}_p50_waitress_vs_werkzeug"] = (get("webui", query, "p50_ms"),
                                                           get("webui", "werkzeug", query, "p50_ms"))
    pairs["web_concurrent_requests_s_waitress_vs_werkzeug"] = (
        get("webui", "concurrent_newest_page", "requests_s"),
        get("webui", "werkzeug", "concurrent_newest_page", "requests_s"))
    slowest = [v for v in (get("shipper", "nginx_combined", "lines_s"), get("consumer", "1", "docs_s")) if v]
    pairs["e2e_vs_slowest_stage"] = (get("e2e", "lines_s"), min(slowest) if slowest else None)
    out = {name: round(a / b, 3) for name, (a, b) in pairs.items() if a is not None and b}
    paired = get("consumer", "1", "vs_raw_insert")  # baseline taken beside each run (see consumer_stage)
    if paired is not None:
        out["consumer_vs_raw_insert"] = round(paired, 3)
    cpu, floor = get("consumer", "1", "cpu_us_per_record"), get("consumer", "1", "raw_insert_client_cpu_us")
    if cpu is not None and floor:
        out["consumer_cpu_vs_raw_insert_client"] = round(cpu / floor, 3)
    return out


def _fmt(value: Any, unit: str = "") -> str:
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}{unit}"
    if isinstance(value, (int, float)):
        return f"{value:,.0f}{unit}"
    return "-"


def _rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    lim = r.get("limits", {})
    rows.append(("limit: cat file", _fmt(lim.get("cat_mib_s"), " MiB/s"), "", ""))
    rows.append(("limit: pika 1000 lines/msg, confirms", _fmt(lim.get("pika_batched_lines_s"), " lines/s"),
                 _fmt(lim.get("pika_cpu_s_per_mline")), ""))
    rows.append(("limit: DB insert_many (logs indexes)", _fmt(lim.get("db_insert_docs_s"), " docs/s"), "", ""))
    for variant, fig in sorted(r.get("peer", {}).get("syslog_ng", {}).items()):
        if isinstance(fig, dict):
            rows.append((f"syslog-ng {variant} -> amqp", _fmt(fig.get("lines_s"), " lines/s"),
                         _fmt(fig.get("cpu_s_per_mline")), _fmt(fig.get("rss_mib"), " MiB")))
    for fmt, fig in r.get("shipper", {}).items():
        if isinstance(fig, dict) and "lines_s" in fig:
            rows.append((f"opslog ship {fmt}", _fmt(fig.get("lines_s"), " lines/s"),
                         _fmt(fig.get("cpu_s_per_mline")), _fmt(fig.get("rss_mib"), " MiB")))
    jd = r.get("journald", {})
    if isinstance(jd.get("journald"), dict):
        rows.append(("journalctl -o json alone", _fmt(jd.get("journalctl_entries_s"), " entries/s"), "", ""))
        rows.append(("opslog ship journald", _fmt(jd["journald"].get("lines_s"), " entries/s"),
                     _fmt(jd["journald"].get("cpu_s_per_mline")), _fmt(jd["journald"].get("rss_mib"), " MiB")))
    for n, fig in r.get("consumer", {}).items():
        if isinstance(fig, dict) and "docs_s" in fig:
            rows.append((f"opslog consume x{n}", _fmt(fig.get("docs_s"), " docs/s"),
                         _fmt(fig.get("cpu_us_per_record")), _fmt(fig.get("rss_mib"), " MiB")))
    e2e = r.get("e2e", {})
    if "lines_s" in e2e:
        lat = e2e.get("latency_ms", {})
        rows.append(("end to end file -> DB", _fmt(e2e.get("lines_s"), " lines/s"),
                     f"p50 {_fmt(lat.get('p50'), ' ms')}", f"p99 {_fmt(lat.get('p99'), ' ms')}"))
    for query, fig in r.get("webui", {}).items():
        if isinstance(fig, dict) and "p50_ms" in fig:
            rows.append((f"web API {query}", f"p50 {_fmt(fig.get('p50_ms'), ' ms')}",
                         f"p95 {_fmt(fig.get('p95_ms'), ' ms')}", _fmt(fig.get("requests_s"), " req/s")
                         if "requests_s" in fig else ""))
    return rows


def table(r: dict[str, Any]) -> str:
    rows = _rows(r)
    width = max(len(row[0]) for row in rows)
    # CPU s per million lines is numerically the same as CPU µs per record
    out = [f"{'figure':<{width}}  {'rate':>18}  {'CPU s/Mline':>12}  {'peak RSS':>10}"]
    out += [f"{a:<{width}}  {b:>18}  {c:>12}  {d:>10}" for a, b, c, d in rows]
    out += [f"ratio {name}: {value}" for name, value in r.get("ratio", {}).items()]
    out += [f"{stage}: {fig['error']}" for stage, fig in r.items() if isinstance(fig, dict) and "error" in fig]
    out += [f"{stage}: not available: {fig['not_available']}" for stage, fig in r.items()
            if isinstance(fig, dict) and "not_available" in fig]
    return "\n".join(out)


def markdown(r: dict[str, Any]) -> str:
    """The README's results section: the run's date, machine and key figures."""
    m = r.get("machine", {})
    head = (f"Run of {r.get('date', '?')} on {m.get('cores')} cores ({m.get('cpu')}), {m.get('memory_gib')} GiB, "
            f"Linux {m.get('kernel')}, Python {m.get('python')}, RabbitMQ {m.get('rabbitmq')}, syslog-ng "
            f"{m.get('syslog_ng')}, SecantusDB {m.get('secantusdb')}; {r.get('lines'):,} lines per file, median "
            f"of {r.get('runs')} runs, {r.get('db_docs'):,} records per database run; suite took "
            f"{r.get('durations_s', {}).get('total', 0) / 60:.1f} min.")
    rows = ["| figure | rate | CPU s/Mline | peak RSS |", "|---|---|---|---|"]
    rows += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(r)]
    ratios_ = [f"- `{name}`: {value}" for name, value in r.get("ratio", {}).items()]
    notes = [f"- {note}" for note in r.get("notes", [])]
    load = r.get("load_average")
    if load:
        head += (f" Load average (1 min) {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end:"
                 " other work on the machine slows some stages more than others.")
    return "\n".join([head, "", *rows, "", "Ratios (same run):", "", *ratios_,
                      *(["", "Notes:", "", *notes] if notes else [])])


def _update_readme(results: dict[str, Any]) -> None:
    readme = BENCH_DIR / "README.md"
    text = readme.read_text(encoding="utf-8")
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        readme.write_text(f"{head}{begin}\n{markdown(results)}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")


def _write(results: dict[str, Any]) -> None:
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)


def main() -> int:
    from common.localservices import MongoServer, RabbitMQNode

    # A server opening a big store (the web stage's million records) can take minutes on a busy
    # machine: say so while it works, as `opslog up` does.
    logging.basicConfig(format="[bench] %(message)s", level=logging.WARNING)
    logging.getLogger("common.localservices.readiness").setLevel(logging.INFO)
    ctx = Context.from_env()
    wanted = [s.strip() for s in os.environ.get("BENCH_STAGES", "").split(",") if s.strip()] or list(STAGES)
    unknown = sorted(set(wanted) - set(STAGES))
    if unknown:
        print(f"unknown BENCH_STAGES {unknown}; choose from {', '.join(STAGES)}", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    if set(wanted) != set(STAGES) and RESULTS.exists():
        results = json.loads(RESULTS.read_text(encoding="utf-8"))  # keep the stages not run now
    results.update({"machine": machine(), "lines": ctx.lines, "runs": ctx.runs, "db_docs": ctx.db_docs,
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    results["load_average"] = {"start": [round(x, 2) for x in os.getloadavg()]}
    durations = results.setdefault("durations_s", {})
    began = time.monotonic()
    failed = False
    shutil.rmtree(ctx.work, ignore_errors=True)
    ctx.work.mkdir(parents=True)
    try:
        for fmt in FILE_FORMATS:
            ctx.files[fmt] = generate(str(ctx.work / f"{fmt}.log"), fmt, ctx.lines)
        results["files"] = {f: {k: v for k, v in info.items() if k != "path"} for f, info in ctx.files.items()}
        with RabbitMQNode(ctx.work / "rabbitmq") as node, MongoServer(ctx.work / "mongo") as db:
            ctx.amqp_url, ctx.broker_pid = node.url, node.pid
            ctx.mongo_uri, ctx.mongo_pid = db.uri, db.pid
            for name in wanted:
                stage_began = time.monotonic()
                print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                try:
                    results[name] = importlib.import_module(STAGES[name]).run(ctx)
                except Exception as exc:  # noqa: BLE001 - one broken stage must not lose the others
                    traceback.print_exc()
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                    failed = True
                durations[name] = round(time.monotonic() - stage_began, 1)
                results["ratio"] = ratios(results)
                _write(results)
        results["notes"] = sorted(set(results.get("notes", [])) | set(ctx.notes))
    finally:
        durations["total"] = round(time.monotonic() - began, 1)
        results["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
        results["ratio"] = ratios(results)
        _write(results)
        shutil.rmtree(ctx.work, ignore_errors=True)
    if set(wanted) == set(STAGES) and not failed and ctx.lines >= README_MIN_LINES:
        _update_readme(results)
    print(table(results))
    print(f"\n{RESULTS.relative_to(BENCH_DIR.parent)} written in {durations['total']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
