"""Prometheus counters of the ingest, in a registry of their own so that several
ingests (tests, `switchyard up`) can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["IngestMetrics"]


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
