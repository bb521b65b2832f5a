"""The shipper's Prometheus metrics, on a registry of its own.

Counters are advanced by the loop; the gauges (bytes behind per file, open
files, bytes waiting for the broker) are read from the loop's state when
scraped, so they cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Backlog(Collector):
    def __init__(self, source: Callable[[], dict[str, int]]):
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("opslog_shipper_bytes_behind", "Bytes in the file not yet confirmed by the broker",
                                  labels=["path"])
        for path, behind in self.source().items():
            gauge.add_metric([path], behind)
        yield gauge


class ShipperMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lines_read = Counter("opslog_shipper_lines_read", "Lines read from files (and journal entries)",
                                  registry=r)
        self.records_published = Counter("opslog_shipper_records_published",
                                         "Records confirmed by the broker", registry=r)
        self.batches_published = Counter("opslog_shipper_batches_published",
                                         "Batches confirmed by the broker", registry=r)
        self.parse_errors = Counter("opslog_shipper_parse_errors", "Records shipped with parse_error", registry=r)
        self.reconnects = Counter("opslog_shipper_reconnects", "Broker failures that forced a reconnect", registry=r)
        self.journal_skipped = Counter("opslog_shipper_journal_skipped_entries",
                                       "Journal entries vacuumed before they were read (seqnums skipped)", registry=r)
        self.journal_oversized = Counter("opslog_shipper_journal_oversized_entries",
                                         "Journal entries skipped: their JSON is longer than the input's bound",
                                         registry=r)
        self.open_files = Gauge("opslog_shipper_open_files", "Files open for reading", registry=r)
        self.buffered_bytes = Gauge("opslog_shipper_buffered_bytes",
                                    "Encoded batches waiting for the broker's confirm", registry=r)

    def watch(self, bytes_behind: Callable[[], dict[str, int]], open_files: Callable[[], int],
              buffered_bytes: Callable[[], int]) -> None:
        """Read the gauges from the shipper's state at scrape time."""
        self.registry.register(_Backlog(bytes_behind))
        self.open_files.set_function(open_files)
        self.buffered_bytes.set_function(buffered_bytes)
