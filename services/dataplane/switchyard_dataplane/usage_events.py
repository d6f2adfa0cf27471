"""What one call records while it runs, and the usage event made from it afterwards."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from switchyard_common.bus import BusMessage, EventPublisher
from switchyard_common.ids import uuid7_str
from switchyard_common.usage import Attempt, UsageEvent, encode_event

from .index import KeyRecord, PriceTable
from .metrics import Metrics
from .protocols.ir import TokenUsage

if TYPE_CHECKING:
    from .call_tracing import CallTrace

__all__ = ["CallRecord", "UsageEmitter"]

log = logging.getLogger(__name__)


class CallRecord:
    """Mutable per-call state filled in by the handler; one per authenticated call."""

    __slots__ = (
        "attempts",
        "capability",
        "client_ip",
        "error_type",
        "key",
        "model",
        "prices",
        "provider",
        "responded",
        "started",
        "status",
        "stream",
        "trace",
        "ts",
        "ttfb",
        "upstream_model",
        "usage",
    )

    def __init__(
        self,
        key: KeyRecord,
        started: float,
        ts: float,
        client_ip: str | None,
        trace: CallTrace | None = None,
    ) -> None:
        self.key = key
        self.started = started  # perf_counter()
        self.ts = ts  # wall clock
        self.client_ip = client_ip
        self.model = ""
        self.capability = "llm"
        self.provider = ""
        self.upstream_model = ""
        self.status = 200
        self.error_type: str | None = None
        self.usage: TokenUsage | None = None
        self.stream = False
        self.attempts: list[Attempt] = []
        self.ttfb: float | None = None
        self.prices: PriceTable | None = None
        # The response has started: an error can no longer be sent as such.
        self.responded = False
        # The call's spans; None unless tracing is enabled.
        self.trace = trace


class UsageEmitter:
    """Turns finished calls into usage events on `<prefix>.<org>`; never blocks."""

    def __init__(self, publisher: EventPublisher, subject_prefix: str, metrics: Metrics) -> None:
        self._publisher = publisher
        self._prefix = subject_prefix
        self._metrics = metrics

    def emit(self, record: CallRecord) -> None:
        now = time.perf_counter()
        usage = record.usage or TokenUsage()
        prices = record.prices
        key = record.key
        trace = record.trace
        event = UsageEvent(
            id=uuid7_str(),
            ts=record.ts,
            org=key.org_name,
            org_id=key.org_id,
            key_id=key.id,
            capability=record.capability,
            model=record.model,
            provider=record.provider,
            upstream_model=record.upstream_model,
            status=record.status,
            error_type=record.error_type,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            tokens_estimated=usage.estimated,
            cost=prices.cost(usage) if prices is not None and record.usage is not None else 0.0,
            currency=prices.currency if prices is not None else "USD",
            latency_ms=(now - record.started) * 1000.0,
            ttfb_ms=(record.ttfb - record.started) * 1000.0 if record.ttfb is not None else None,
            stream=record.stream,
            attempts=record.attempts,
            client_ip=record.client_ip,
            trace_id=trace.trace_id if trace is not None else None,
        )
        try:
            self._publisher.publish_nowait(
                BusMessage(
                    subject=f"{self._prefix}.{key.org_name}", msg_id=event.id, data=encode_event(event)
                )
            )
        except Exception:  # a publisher failure must never turn into a failed call
            self._metrics.usage_publish_errors.inc()
            log.exception("usage event %s could not be handed to the publisher", event.id)
            return
        self._metrics.usage_events.inc()
