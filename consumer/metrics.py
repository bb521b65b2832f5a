"""The consumer's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ConsumerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stored = Counter("opslog_consumer_records_stored", "Records inserted into MongoDB", registry=r)
        self.duplicates = Counter("opslog_consumer_duplicates_skipped",
                                  "Records already stored (redelivery or re-sent lines)", registry=r)
        self.dead_lettered = Counter("opslog_consumer_dead_lettered", "Messages sent to the dead-letter queue",
                                     registry=r)
        self.requeued = Counter("opslog_consumer_requeued", "Redelivered messages sent round again as suspects",
                                registry=r)
        self.retries = Counter("opslog_consumer_retries", "Waits before retrying the database or broker",
                               registry=r)
        self.reconnects = Counter("opslog_consumer_reconnects", "Broker connections lost", registry=r)
        self.batch_seconds = Histogram("opslog_consumer_batch_seconds", "Time to store and ack one batch",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                       registry=r)
