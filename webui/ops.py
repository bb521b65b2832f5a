"""Operating the UI itself: `/healthz` for load balancers, `/metrics` for Prometheus.

Both are open (no credentials), as scrapers and probes expect; neither shows log content.
Metrics live in a registry of the app's own, so two apps in one process never collide.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from common.errors import StoreUnavailable
from webui.formats import json_response
from webui.queries import QueryTimeout, get_reader

bp = Blueprint("ops", __name__)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("opslog_web_requests_total", "HTTP requests answered",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("opslog_web_request_seconds", "Time to answer an HTTP request", ["endpoint"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.store_errors = Counter("opslog_web_store_unavailable_total",
                                    "Requests that failed because the database was unreachable",
                                    registry=self.registry)

    def install(self, app: Flask) -> None:
        app.extensions["opslog.metrics"] = self

        @app.before_request
        def start_timer() -> None:
            g.started = time.perf_counter()

        @app.after_request
        def observe(response):
            endpoint = request.endpoint or "unknown"
            self.requests.labels(endpoint, str(response.status_code)).inc()
            if "started" in g:
                self.latency.labels(endpoint).observe(time.perf_counter() - g.started)
            return response


@bp.get("/healthz")
def healthz():
    """Same shape as the shipper's and consumer's /healthz (common.metrics)."""
    try:
        get_reader().ping()
    except (StoreUnavailable, QueryTimeout):
        return json_response({"status": "degraded", "checks": {"database": False}}, 503)
    return json_response({"status": "ok", "checks": {"database": True}})


@bp.get("/metrics")
def metrics():
    registry = current_app.extensions["opslog.metrics"].registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
