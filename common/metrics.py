"""A small HTTP endpoint for `/metrics` (Prometheus text) and `/healthz` (JSON).

Each service builds its own CollectorRegistry (no module-level globals) and a
health function returning {"check": bool}; /healthz answers 200 when every
check is true, else 503, so a load balancer or systemd watchdog can use it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, bool]]


class MetricsServer:
    def __init__(self, listen: str, registry: CollectorRegistry, health: HealthCheck):
        host, _, port = listen.rpartition(":")
        registry_, health_ = registry, health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry_))
                elif self.path == "/healthz":
                    checks = health_()
                    ok = all(checks.values())
                    self._send(200 if ok else 503, "application/json",
                               orjson.dumps({"status": "ok" if ok else "degraded", "checks": checks}))
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> MetricsServer:
        self.thread.start()
        log.info("metrics on http://%s:%d/metrics", *self.server.server_address[:2])
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
