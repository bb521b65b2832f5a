"""The shipper alone: file -> broker, per format, on the same file and broker as the peer.

`plain` and `nginx_combined` read the nginx file syslog-ng reads (`plain` is
the like-for-like of syslog-ng's `raw`, `nginx_combined` of its `parsed`);
`json` reads the JSON application log; `cri` a container's log as containerd
writes it, `logfmt` the JSON log's events in logfmt (`native`: split by shipper._logfmt, not by the
Python reference alone). Each run is one `opslog ship` process with fresh state (so it starts at the
beginning of the file) and its default batching, into opslog's own topology (quorum queue) on the
private node; the formats take turns, run after run.

Timed from the process's start, imports included, until it has every record
confirmed by the broker: the shipper's `opslog_shipper_records_published`
counter, which it advances only after the broker's publisher confirm, polled
every 0.1 s on its metrics endpoint (at most ~1% of its time). syslog-ng is
timed the same way, from start until the broker holds every line. After the
clock stops, the queue is drained and every record counted from the payloads,
so a figure is only kept when the broker really holds each line once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.context import Context
from bench.measure import ProcessTree, summarize, wait_until
from bench.procs import OpslogProcess, metric, write_config
from bench.queues import Broker
from bench.records import BENCH_HOST
from common.localservices import free_port
from shipper import logfmt

# format of the input -> generated file it reads
FORMATS = {"plain": "nginx_combined", "nginx_combined": "nginx_combined", "json": "json", "cri": "cri",
           "logfmt": "logfmt"}
EXCHANGE, QUEUE, DEAD = "opslog", "opslog.records", "opslog.dead"


def config(ctx: Context, fmt: str, state_dir: str, metrics_port: int, inputs: list[dict] | None = None) -> dict:
    return {
        "amqp": {"url": ctx.amqp_url, "exchange": EXCHANGE, "queue": QUEUE, "dead_letter_queue": DEAD},
        "shipper": {"host": BENCH_HOST, "state_dir": state_dir, "metrics_listen": f"127.0.0.1:{metrics_port}",
                    "inputs": inputs or [{"paths": [ctx.path(FORMATS[fmt])], "app": "bench", "format": fmt}]},
        "log_level": "warning",
    }


def clear_topology(broker: Broker) -> None:
    broker.delete([QUEUE, DEAD], [EXCHANGE, EXCHANGE + ".dlx"])


def one_run(ctx: Context, fmt: str, run_dir: Path, inputs: list[dict] | None = None,
            lines: int | None = None) -> dict[str, float]:
    """One `opslog ship` on `fmt`'s bench file, or on `inputs` holding `lines` records (bench.journald_stage)."""
    lines = lines if lines is not None else ctx.files[FORMATS[fmt]]["lines"]
    port = free_port()
    cfg = write_config(run_dir / "ship.yaml", config(ctx, fmt, str(run_dir / "state"), port, inputs))
    with Broker(ctx.amqp_url) as broker:
        clear_topology(broker)
        node = ProcessTree(ctx.broker_pid).sample() if ctx.broker_pid else None
        node_cpu = node.cpu_s if node else 0.0
        shipper = OpslogProcess(ctx, "ship", cfg).start()
        try:
            def done() -> bool:
                shipper.tree.sample_every(1.0)
                return metric(port, "opslog_shipper_records_published") >= lines
            finished = wait_until(done, timeout=60 + lines / 5000, interval=0.1, alive=shipper.alive,
                                  what=f"opslog ship {fmt}: {lines} records confirmed")
            shipper.tree.sample()
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; the shipper said:\n{shipper.log_tail()}") from None
        finally:
            status = shipper.stop()
        broker_cpu = node.sample().cpu_s - node_cpu if node else 0.0
        messages, records = broker.count_records(QUEUE)
        clear_topology(broker)
    if status != 0:
        raise RuntimeError(f"opslog ship {fmt} exited with {status} on SIGTERM:\n{shipper.log_tail()}")
    if records != lines:
        raise RuntimeError(f"opslog ship {fmt}: the queue holds {records} records for {lines} lines")
    elapsed = finished - shipper.started
    return {"lines_s": lines / elapsed, "seconds": elapsed, "cpu_s_per_mline": shipper.tree.cpu_s * 1e6 / lines,
            "rss_mib": shipper.tree.rss_mib, "broker_cpu_s_per_mline": broker_cpu * 1e6 / lines,
            "records_per_message": records / max(messages, 1)}


def run(ctx: Context) -> dict:
    base = ctx.work / "shipper"
    shutil.rmtree(base, ignore_errors=True)
    runs: dict[str, list[dict[str, float]]] = {fmt: [] for fmt in FORMATS}
    for i in range(ctx.runs):  # formats in turn, so a ratio between two is not one of the machine's moods
        for fmt in FORMATS:
            run_dir = base / f"{fmt}-{i}"
            run_dir.mkdir(parents=True)
            runs[fmt].append(one_run(ctx, fmt, run_dir))
    shutil.rmtree(base, ignore_errors=True)
    figures = {fmt: summarize(fmt_runs, digits=2) for fmt, fmt_runs in runs.items()}
    figures["logfmt"]["native"] = logfmt.NATIVE  # the C split (setup.py) or the Python reference alone
    return figures
