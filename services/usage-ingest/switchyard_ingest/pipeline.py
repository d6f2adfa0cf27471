"""One batch through the ingest: decode, validate, write, count.

Transport-free: the JetStream consumer and the in-process bus drain both hand it raw
payloads and act on the outcome (ack, dead-letter, retry) in their own way. Tracing
wraps it from outside (batch_tracing.py), where the messages' headers are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from switchyard_common.usage import UsageEvent

from .decode import PoisonMessage, decode_usage
from .metrics import IngestMetrics
from .timeseries import TimeSeriesError
from .writer import UsageWriter

__all__ = ["BatchOutcome", "IngestPipeline"]


@dataclass(slots=True)
class BatchOutcome:
    # indices of payloads now stored (inserted or already present): safe to ack
    stored: list[int] = field(default_factory=list)
    # (index, reason) of payloads that can never be stored: dead-letter them
    poison: list[tuple[int, str]] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0


class IngestPipeline:
    def __init__(self, writer: UsageWriter, metrics: IngestMetrics) -> None:
        self.writer = writer
        self.metrics = metrics

    async def process(self, payloads: Sequence[bytes]) -> BatchOutcome:
        """Store a batch. Raises if the database is unavailable: then nothing from this
        batch is committed and every payload must be retried."""
        outcome = BatchOutcome()
        self.metrics.events_consumed.inc(len(payloads))
        self.metrics.batch_size.observe(len(payloads))
        events: list[UsageEvent] = []
        positions: list[int] = []
        for index, data in enumerate(payloads):
            try:
                events.append(decode_usage(data))
            except PoisonMessage as exc:
                outcome.poison.append((index, str(exc)))
                continue
            positions.append(index)
        self.metrics.last_batch_size.set(len(payloads))
        try:
            result = await self.writer.write(events)
        except Exception as exc:
            self.metrics.write_errors.inc()
            if isinstance(exc, TimeSeriesError):
                self.metrics.timeseries_errors.inc()
            raise
        rejected = {i for i, _ in result.rejected}
        outcome.poison.extend((positions[i], reason) for i, reason in result.rejected)
        outcome.poison.sort()
        outcome.stored = [pos for i, pos in enumerate(positions) if i not in rejected]
        outcome.inserted = result.inserted
        outcome.duplicates = result.duplicates
        self.metrics.events_ingested.inc(result.inserted)
        self.metrics.duplicates_skipped.inc(result.duplicates)
        self.metrics.batches.inc()
        self.metrics.rollup_rows.inc(result.rollup_rows)
        self.metrics.timeseries_lines.inc(result.timeseries_lines)
        return outcome
