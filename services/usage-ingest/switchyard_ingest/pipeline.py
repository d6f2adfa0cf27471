"""One batch through the ingest: decode, validate, write, count.

Transport-free: the JetStream consumer and the in-process bus drain both hand it raw
payloads and act on the outcome (ack, dead-letter, retry) in their own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from switchyard_common.usage import UsageEvent

from .decode import PoisonMessage, decode_usage
from .metrics import IngestMetrics
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
        except Exception:
            self.metrics.write_errors.inc()
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
        return outcome
