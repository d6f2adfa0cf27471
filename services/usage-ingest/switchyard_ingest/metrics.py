"""Prometheus counters of the ingest, in a registry of their own so that several
ingests (tests, `switchyard up`) can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

__all__ = ["IngestMetrics"]

# Messages per batch: 1 when idle, up to SWITCHYARD_BATCH_SIZE under load.
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # CPU, memory and file descriptors of this process (the dashboards' resource panels).
        ProcessCollector(registry=self.registry)
        self.events_ingested = Counter(
            "switchyard_ingest_events_ingested", "Usage events written as new rows", registry=self.registry
        )
        self.duplicates_skipped = Counter(
            "switchyard_ingest_duplicates_skipped",
            "Usage events already stored (redeliveries, replays)",
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "switchyard_ingest_dead_lettered", "Poison messages set aside", registry=self.registry
        )
        self.batches = Counter("switchyard_ingest_batches", "Batches committed", registry=self.registry)
        self.write_errors = Counter(
            "switchyard_ingest_write_errors",
            "Batches that failed to commit and were retried",
            registry=self.registry,
        )
        self.last_batch_size = Gauge(
            "switchyard_ingest_last_batch_size", "Messages in the last batch", registry=self.registry
        )
        self.rollup_rows = Counter(
            "switchyard_ingest_rollup_rows",
            "Per-minute rollup rows upserted (one per minute and group of a batch)",
            registry=self.registry,
        )
        self.timeseries_lines = Counter(
            "switchyard_ingest_timeseries_lines",
            "Line-protocol lines accepted by the time-series store",
            registry=self.registry,
        )
        self.timeseries_errors = Counter(
            "switchyard_ingest_timeseries_errors",
            "Batches not committed because the time-series store refused or was unreachable",
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "switchyard_ingest_events_consumed",
            "Messages received from the bus (redeliveries count again)",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "switchyard_ingest_batch_size",
            "Messages per batch handed to the writer",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        # Lag, refreshed when /metrics is scraped (JetStream consumer info).
        self.pending = Gauge(
            "switchyard_ingest_pending_events",
            "Events in the stream not yet delivered to any ingest replica (consumer num_pending)",
            registry=self.registry,
        )
        self.ack_pending = Gauge(
            "switchyard_ingest_unacked_events",
            "Events delivered and not yet acknowledged (consumer num_ack_pending)",
            registry=self.registry,
        )
        self.oldest_unacked_age = Gauge(
            "switchyard_ingest_oldest_unacked_age_seconds",
            "Age of the oldest event not yet acknowledged (0 when caught up)",
            registry=self.registry,
        )
        self.lag_probe_errors = Counter(
            "switchyard_ingest_lag_probe_errors",
            "Scrapes whose lag figures could not be refreshed (NATS unreachable)",
            registry=self.registry,
        )
