"""The peer, side by side: syslog-ng tailing the same file into the same broker.

Two variants, from our configs in bench/peers/ (`@INPUT_FILE@`, `@AMQP_PORT@`
filled in): `raw` publishes each line verbatim; `parsed` runs syslog-ng's
apache-accesslog-parser() and publishes the fields as JSON. Both publish one
persistent message per line (syslog-ng's amqp() has no batching and no
publisher confirms) to the durable exchange `peer.logs`, bound to a classic
durable queue declared here before the start.

Each run starts syslog-ng in the foreground with fresh state of its own (a new
persist file, so it reads the nginx file from the beginning) and is timed from
its start until the queue holds every line. CPU seconds are syslog-ng's
utime + stime (/proc/PID/stat), peak RSS its VmHWM; the broker's CPU over the
run is reported beside them. syslog-ng is stopped with SIGTERM and the queue
and exchange deleted after each run.

rsyslog has no RabbitMQ output in Debian 12 (no omrabbitmq package), so it
cannot be compared on this path; the stage checks the archive again and says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.context import BENCH_DIR, Context, env_int
from bench.measure import ProcessTree, summarize, wait_until
from bench.queues import Broker

VARIANTS = ("raw", "parsed")
EXCHANGE, QUEUE, ROUTING_KEY = "peer.logs", "peer.access", "access"
APT_PACKAGES = ("syslog-ng-core", "syslog-ng-mod-amqp", "syslog-ng-scl")
AMQP_MODULE_GLOB = "/usr/lib/syslog-ng/*/libafamqp.so"
SCL_PARSER = "/usr/share/syslog-ng/include/scl/apache/apache.conf"


def ensure_syslog_ng() -> str:
    """The syslog-ng binary, installing Debian's packages with apt-get when any part is missing."""
    import glob

    if shutil.which("syslog-ng") and glob.glob(AMQP_MODULE_GLOB) and os.path.exists(SCL_PARSER):
        return shutil.which("syslog-ng") or "syslog-ng"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which("syslog-ng")
    if not found:
        raise RuntimeError(f"syslog-ng still missing after apt-get install {' '.join(APT_PACKAGES)}")
    return found


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def rsyslog_note() -> str:
    """Whether Debian ships a RabbitMQ output for rsyslog, checked against the package archive."""
    found = subprocess.run(["apt-cache", "show", "rsyslog-rabbitmq"], capture_output=True).returncode == 0
    if found:
        return "rsyslog-rabbitmq is now in the package archive: rsyslog could be added as a peer"
    return ("rsyslog: Debian 12 ships no RabbitMQ output module (no omrabbitmq / rsyslog-rabbitmq package), "
            "so it cannot be compared on the file -> RabbitMQ path")


def _config(variant: str, input_file: str, amqp_port: int, out: Path) -> Path:
    template = (BENCH_DIR / "peers" / f"syslog-ng-{variant}.conf.in").read_text(encoding="utf-8")
    out.write_text(template.replace("@INPUT_FILE@", input_file).replace("@AMQP_PORT@", str(amqp_port)),
                   encoding="utf-8")
    return out


def prefix_file(ctx: Context, base: Path) -> tuple[str, int]:
    """The first BENCH_PEER_LINES lines of the nginx file. syslog-ng publishes one message per
    line at a steady rate, so a prefix measures the same rate in a quarter of the time."""
    source, total = ctx.path("nginx_combined"), ctx.files["nginx_combined"]["lines"]
    wanted = min(total, env_int("BENCH_PEER_LINES", 250_000))
    if wanted == total:
        return source, total
    target = base / "nginx_prefix.log"
    with open(source, "rb") as src, open(target, "wb") as dst:
        for _ in range(wanted):
            dst.write(src.readline())
    return str(target), wanted


def one_run(binary: str, ctx: Context, variant: str, run_dir: Path, source: tuple[str, int]) -> dict[str, float]:
    run_dir.mkdir(parents=True)
    path, lines = source
    conf = _config(variant, path, urlsplit(ctx.amqp_url).port or 5672, run_dir / "syslog-ng.conf")
    argv = [binary, "-F", "-e", "--no-caps", "-f", str(conf), "-R", str(run_dir / "persist"),
            "-p", str(run_dir / "syslog-ng.pid"), "-c", str(run_dir / "syslog-ng.ctl")]
    with Broker(ctx.amqp_url) as broker:
        broker.delete([QUEUE], [EXCHANGE])
        broker.declare_queue(QUEUE, exchange=EXCHANGE, routing_key=ROUTING_KEY)
        node = ProcessTree(ctx.broker_pid).sample() if ctx.broker_pid else None
        node_cpu = node.cpu_s if node else 0.0
        with open(run_dir / "syslog-ng.err", "wb") as err:
            began = time.monotonic()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT)
        tree = ProcessTree(proc.pid)
        try:
            def done() -> bool:
                tree.sample_every(1.0)
                return broker.depth(QUEUE) >= lines
            finished = wait_until(done, timeout=60 + lines / 5000, alive=lambda: proc.poll() is None,
                                  what=f"syslog-ng {variant}: {lines} messages in {QUEUE}")
            tree.sample()
        except (RuntimeError, TimeoutError) as exc:
            tail = (run_dir / "syslog-ng.err").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; syslog-ng said:\n{tail}") from None
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        held = broker.depth(QUEUE)
        broker_cpu = node.sample().cpu_s - node_cpu if node else 0.0
        broker.delete([QUEUE], [EXCHANGE])
    elapsed = finished - began
    if held != lines:
        raise RuntimeError(f"syslog-ng {variant}: {held} messages in the queue for {lines} lines")
    return {"lines_s": lines / elapsed, "seconds": elapsed, "cpu_s_per_mline": tree.cpu_s * 1e6 / lines,
            "rss_mib": tree.rss_mib, "broker_cpu_s_per_mline": broker_cpu * 1e6 / lines}


def run(ctx: Context) -> dict:
    binary = ensure_syslog_ng()
    ctx.notes.append(rsyslog_note())
    base = ctx.work / "peer"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    source = prefix_file(ctx, base)
    figures: dict[str, object] = {"lines": source[1]}
    for variant in VARIANTS:
        runs = [one_run(binary, ctx, variant, base / f"{variant}-{i}", source) for i in range(ctx.runs)]
        figures[variant] = summarize(runs, digits=2)
    shutil.rmtree(base, ignore_errors=True)
    return {"syslog_ng": {"version": version(binary), "queue": "classic durable, one message per line",
                          **figures}}
