"""The shipper's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Backlog(Collector):
    def __init__(self, source: Callable[[], dict[str, int]]):
        self.source = source

    def collect(self):  # type: ignore[no-untyped-def]
        gauge = GaugeMetricFamily("opslog_shipper_bytes_behind", "Bytes in the file not yet confirmed by the broker",
                                  labels=["path"])
        for path, behind in self.source().items():
            gauge.add_metric([path], behind)
        yield gauge


class ShipperMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lines_read = Counter("opslog_shipper_lines_read", "Lines read from files", registry=r)
        self.records_published = Counter("opslog_shipper_records_published",
                                         "Records confirmed by the broker", registry=r)
        self.batches_published = Counter("opslog_shipper_batches_published",
                                         "Batches confirmed by the broker", registry=r)
        self.parse_errors = Counter("opslog_shipper_parse_errors", "Records shipped with parse_error", registry=r)
        self.reconnects = Counter("opslog_shipper_reconnects", "Broker failures that forced a reconnect", registry=r)

    def watch_backlog(self, source: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_Backlog(source))
