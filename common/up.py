"""`opslog up`: the whole pipeline on one machine, for a first look.

Starts a private RabbitMQ node and a SecantusDB server under the data dir
(unless the config points at existing ones), writes the effective config
there, then runs shipper, consumer, web UI and alert evaluator as child processes, plus a demo
log that keeps growing. Ctrl-C stops the children, then the services.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import yaml

from common.config import AmqpConfig, Config, MongoConfig, load_config
from common.localservices import MongoServer, RabbitMQNode, free_port
from common.localservices.readiness import DEFAULT_STALL_TIMEOUT

log = logging.getLogger(__name__)

DEMO_MESSAGES = [
    ("INFO", "GET /api/orders/{n} 200 in {ms}ms"),
    ("INFO", "user {n} signed in from 10.0.{a}.{b}"),
    ("DEBUG", "cache hit ratio {a}% over the last minute"),
    ("WARNING", "slow query on orders: {ms}ms (threshold 250ms)"),
    ("ERROR", "payment provider timeout after {ms}ms for order {n}"),
    ("INFO", "worker {a} finished job {n}"),
]


def _port(preferred: int) -> int:
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def _demo_writer(path: Path, stop: threading.Event) -> None:
    """Append a few realistic lines per second to the demo log."""
    rng = random.Random()
    with open(path, "a", buffering=1, encoding="utf-8") as fh:
        while not stop.is_set():
            level, text = rng.choice(DEMO_MESSAGES)
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            fh.write(f"{now} {level} demo: " + text.format(n=rng.randint(1000, 9999), ms=rng.randint(3, 900),
                                                         a=rng.randint(0, 99), b=rng.randint(1, 254)) + "\n")
            stop.wait(rng.uniform(0.1, 0.5))


def run_up(config: Config | None, data_dir: str, paths: list[str], *,
           stall_timeout: float = DEFAULT_STALL_TIMEOUT) -> int:
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    demo = data / "demo" / "demo.log"
    demo.parent.mkdir(exist_ok=True)
    stop = threading.Event()
    # While a service starts (minutes, on a big store) Ctrl-C or SIGTERM abandons the wait at once and
    # stops what started; once everything runs, they end the main loop below.
    _on_stop_signals(_interrupt)

    with ExitStack() as stack:
        raw = _raw_config(config)
        if config is None or config.amqp.urls == AmqpConfig().urls:
            node = stack.enter_context(
                RabbitMQNode(data / "rabbitmq", port=_port(5672), stall_timeout=stall_timeout).start())
            raw.setdefault("amqp", {})["url"] = node.url
        if config is None or config.mongo.uri == MongoConfig().uri:
            db = stack.enter_context(
                MongoServer(data / "mongo", port=_port(27017), stall_timeout=stall_timeout).start())
            raw.setdefault("mongo", {})["uri"] = db.uri + "/opslog"
        _on_stop_signals(lambda *_: stop.set())
        password = None
        if config is None:
            password = secrets.token_urlsafe(12)
            from common.passwords import hash_password
            raw["webui"] = {"listen": f"127.0.0.1:{_port(8080)}", "auth": "password",
                            "users": {"admin": hash_password(password)}, "secret_key": secrets.token_hex(32)}
            raw["shipper"] = {"host": os.uname().nodename, "state_dir": str(data / "shipper"),
                              "inputs": [{"paths": [str(demo)], "app": "demo", "format": "plain"}]}
        # The paths on the command line are tailed with or without a config file: an operator who
        # names a file expects to see it.
        if paths:
            shipper = raw["shipper"] = raw.get("shipper") or {}
            shipper["inputs"] = [*(shipper.get("inputs") or []),
                                 *({"paths": [p], "app": Path(p).stem or "logs", "format": "plain"} for p in paths)]
        effective = data / "opslog.yaml"
        effective.write_text(yaml.safe_dump(raw, sort_keys=False))
        effective.chmod(0o600)
        load_config(str(effective))  # fail here, clearly, rather than in three children

        writer = threading.Thread(target=_demo_writer, args=(demo, stop), daemon=True)
        writer.start()
        children = [_child(cmd, effective, data) for cmd in ("consume", "ship", "web", "alert")]
        stack.callback(_stop_children, children)
        listen = raw["webui"]["listen"] if "webui" in raw else "127.0.0.1:8080"
        print(f"\nopslog is up: http://{listen}/", flush=True)
        if password:
            print(f"  sign in as admin / {password}", flush=True)
        print(f"  config: {effective}\n  logs: {data}/*.log\n  Ctrl-C stops everything.\n", flush=True)
        while not stop.is_set():
            for name, proc in children:
                if proc.poll() is not None:
                    log.error("opslog %s exited with %s; see %s/%s.log", name, proc.returncode, data, name)
                    stop.set()
            stop.wait(0.5)
    print("opslog stopped.", flush=True)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _on_stop_signals(handler: Callable[..., None]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _raw_config(config: Config | None) -> dict:
    if config is None or config.path is None:
        return {}
    with open(config.path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def _child(command: str, config: Path, data: Path) -> tuple[str, subprocess.Popen[bytes]]:
    out = open(data / f"{command}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "common.cli", command, "-c", str(config)],
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    return command, proc


def _stop_children(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for _, proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
