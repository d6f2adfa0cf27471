"""One batch through the ingest: decode, validate, write, count.

Transport-free: the JetStream consumer and the in-process bus drain both hand it raw
payloads and act on the outcome (ack, dead-letter, retry) in their own way. With tracing
on, each batch is a span linked to the traces of the calls its events record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.trace import INVALID_SPAN_ID, Span, SpanContext, SpanKind
from switchyard_common.tracing import TRACING, get_tracer
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
        if not TRACING.enabled:
            return await self._process(payloads, None)
        # A failed write is recorded on the span (exception, error status) by the SDK.
        with get_tracer("switchyard.ingest").start_as_current_span(
            "ingest usage batch",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(payloads),
            },
        ) as span:
            return await self._process(payloads, span)

    async def _process(self, payloads: Sequence[bytes], span: Span | None) -> BatchOutcome:
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
        if span is not None:
            _link_calls(span, events)
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
        if span is not None:
            span.set_attributes(
                {
                    "switchyard.ingest.inserted": result.inserted,
                    "switchyard.ingest.duplicates": result.duplicates,
                    "switchyard.ingest.poison": len(outcome.poison),
                }
            )
        return outcome


def _link_calls(span: Span, events: Sequence[UsageEvent]) -> None:
    """One link per distinct call trace. The event carries the trace id only, so the
    link names the trace (span id unset, allowed for links that carry attributes);
    the SDK caps the number of links per span (OTEL_SPAN_LINK_COUNT_LIMIT, 128)."""
    seen: set[str] = set()
    for event in events:
        hex_id = event.trace_id
        if not hex_id or len(hex_id) != 32 or hex_id in seen:
            continue
        seen.add(hex_id)
        try:
            trace_id = int(hex_id, 16)
        except ValueError:
            continue
        if trace_id:
            context = SpanContext(trace_id, INVALID_SPAN_ID, is_remote=True)
            span.add_link(context, {"switchyard.usage.event_id": event.id})
