"""Spans of one ingest batch, continuing the traces of the calls its events record.

The data plane sends each usage event with the W3C `traceparent` of the call's PRODUCER
span in the NATS message headers (the disk spool keeps them). The ingest writes events
in batches, so one span cannot be the child of every call. Both shapes the messaging
conventions describe are recorded (docs/adr/009-trace-context-across-nats-...):

- `ingest usage batch` (CONSUMER): the batch write, with one link per traced event;
- `process <subject>` (CONSUMER) per traced event: a CHILD of that event's context, so
  the call's own trace ends in the ingest write, linked back to the batch span. It spans
  the batch's processing and says what became of the event (stored, dead-lettered,
  retried).

Nothing here runs while tracing is off (`TRACING.enabled`). Events whose message has no
trace context (tracing off at the data plane, or spooled by an older one) are counted
in the batch but get no span of their own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from switchyard_common.tracing import TRACING, get_tracer, remote_span_context

from .pipeline import BatchOutcome, IngestPipeline

__all__ = ["ConsumedMessage", "traced_process"]

_SCOPE = "switchyard.ingest"

Headers = Mapping[str, str] | tuple[tuple[str, str], ...] | None


class ConsumedMessage(Protocol):
    """A JetStream `Msg` or an in-process `BusMessage`."""

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def headers(self) -> Headers: ...


def _msg_id(headers: Headers, fallback: Any) -> str | None:
    if isinstance(headers, Mapping):
        value = headers.get("Nats-Msg-Id")
        if value:
            return value
    return fallback if isinstance(fallback, str) else None


async def traced_process(pipeline: IngestPipeline, messages: Sequence[ConsumedMessage]) -> BatchOutcome:
    """`pipeline.process` over the messages' payloads, traced when tracing is on.
    Raises what the pipeline raises (the caller retries the batch)."""
    payloads = [m.data for m in messages]
    if not TRACING.enabled:
        return await pipeline.process(payloads)
    events: list[tuple[int, SpanContext, str | None]] = []
    for index, message in enumerate(messages):
        context = remote_span_context(message.headers)
        if context is not None:
            events.append((index, context, _msg_id(message.headers, getattr(message, "msg_id", None))))
    tracer = get_tracer(_SCOPE)
    started = time.time_ns()
    batch = tracer.start_span(
        "ingest usage batch",
        kind=SpanKind.CONSUMER,
        links=[
            Link(context, {"messaging.message.id": msg_id} if msg_id else None)
            for _, context, msg_id in events
        ],
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.batch.message_count": len(messages),
            "switchyard.ingest.traced_events": len(events),
        },
        start_time=started,
    )
    outcome: BatchOutcome | None = None
    error: BaseException | None = None
    try:
        # Current while the batch runs: log lines carry its trace id, and any span the
        # writer starts nests under it.
        with trace.use_span(batch, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            outcome = await pipeline.process(payloads)
        return outcome
    except BaseException as exc:
        error = exc
        raise
    finally:
        _event_spans(messages, events, batch, started, outcome, error)
        _end_batch(batch, outcome, error)


def _event_spans(
    messages: Sequence[ConsumedMessage],
    events: list[tuple[int, SpanContext, str | None]],
    batch: Span,
    started: int,
    outcome: BatchOutcome | None,
    error: BaseException | None,
) -> None:
    if not events:
        return
    poison = dict(outcome.poison) if outcome is not None else {}
    tracer = get_tracer(_SCOPE)
    batch_link = [Link(batch.get_span_context())]
    for index, context, msg_id in events:
        subject = messages[index].subject
        attributes: dict[str, Any] = {
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": subject,
        }
        if msg_id:
            attributes["messaging.message.id"] = msg_id
        span = tracer.start_span(
            f"process {subject}",
            context=trace.set_span_in_context(trace.NonRecordingSpan(context)),
            kind=SpanKind.CONSUMER,
            links=batch_link,
            attributes=attributes,
            start_time=started,
        )
        if error is not None:
            span.set_attribute("switchyard.ingest.outcome", "retry")
            span.set_status(Status(StatusCode.ERROR, f"batch not written: {type(error).__name__}"))
        elif index in poison:
            span.set_attributes({"switchyard.ingest.outcome": "dead_letter", "error.type": "poison"})
            span.set_status(Status(StatusCode.ERROR, poison[index][:200]))
        else:
            span.set_attribute("switchyard.ingest.outcome", "stored")
        span.end()


def _end_batch(batch: Span, outcome: BatchOutcome | None, error: BaseException | None) -> None:
    if outcome is not None:
        batch.set_attributes(
            {
                "switchyard.ingest.inserted": outcome.inserted,
                "switchyard.ingest.duplicates": outcome.duplicates,
                "switchyard.ingest.poison": len(outcome.poison),
            }
        )
    if error is not None:
        if isinstance(error, Exception):
            batch.record_exception(error)
        batch.set_status(Status(StatusCode.ERROR, type(error).__name__))
    batch.end()
