"""What one call records while it runs, and the usage event made from it afterwards."""

from __future__ import annotations

import logging
import time
from types import MappingProxyType
from typing import TYPE_CHECKING

from switchyard_common.bus import BusMessage, EventPublisher
from switchyard_common.ids import uuid7_str
from switchyard_common.usage import Attempt, UsageEvent, encode_event

from .index import KeyRecord, PriceTable, SnapshotIndex, Target
from .metering import FREE, MAIN_UNITS, Bill, CallUnits, unpriced_units
from .metrics import Metrics
from .protocols.ir import TokenUsage

if TYPE_CHECKING:
    from .admission.governor import Ticket
    from .audit_capture import AuditCapture
    from .call_tracing import CallTrace

__all__ = ["CallRecord", "UsageEmitter", "billing_prices"]

log = logging.getLogger(__name__)

# The status of a call whose caller went away before its answer was complete
# (call_handler.CLIENT_CLOSED, nginx's 499).
_CLIENT_CLOSED = 499
# Shared empty header list (never mutated: the governor assigns a new list).
_NO_HEADERS: list[tuple[bytes, bytes]] = []


class CallRecord:
    """Mutable per-call state filled in by the handler; one per authenticated call."""

    __slots__ = (
        "_bill",
        "caller_trace_id",
        "audit",
        "admission",
        "attempts",
        "audio_seconds",
        "capability",
        "characters",
        "client_ip",
        "error_type",
        "images",
        "input_estimate",
        "key",
        "model",
        "pages",
        "prices",
        "provider",
        "refused_by",
        "responded",
        "response_headers",
        "shadow_refusals",
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
        # Admission (admission/governor.py): the rule that refused the call, rules in
        # shadow mode that would have, what to settle afterwards, the input tokens
        # counted up front (-1: not counted), headers for the answer (x-ratelimit-*).
        self.refused_by: str | None = None
        # The trace id from the caller's `traceparent` when this data plane does not trace.
        self.caller_trace_id: str | None = None
        # Priced once (by the usage event), then read by budget settlement.
        self._bill: Bill | None = None
        # What the audit log keeps of this call; None when the org audits nothing.
        self.audit: AuditCapture | None = None
        self.shadow_refusals: list[str] = []
        self.admission: Ticket | None = None
        self.input_estimate = -1
        self.response_headers: list[tuple[bytes, bytes]] = _NO_HEADERS
        self.stream = False
        self.attempts: list[Attempt] = []
        self.ttfb: float | None = None
        # The prices the call is billed at (the public model's, else the answering
        # target's: metering docs); None or empty = unpriced.
        self.prices: PriceTable | None = None
        # Units of the non-token capabilities (image, vision-segment, ocr, asr, tts),
        # set by their routes; chat and embeddings are metered by `usage`.
        self.images = 0
        self.pages = 0
        self.audio_seconds = 0.0
        self.characters = 0
        # The response has started: an error can no longer be sent as such.
        self.responded = False
        # The call's spans; None unless tracing is enabled.
        self.trace = trace

    def units(self) -> CallUnits | None:
        """What the call is billed for; None when nothing billable happened (refused
        before any upstream answered)."""
        usage = self.usage
        if usage is None and not (self.images or self.pages or self.audio_seconds or self.characters):
            return None
        return CallUnits.of(
            usage,
            images=self.images,
            pages=self.pages,
            audio_seconds=self.audio_seconds,
            characters=self.characters,
        )

    def bill(self) -> Bill:
        """The call's cost at its prices: what the usage event carries and what budget
        settlement must charge (the same number). Call once the units are final."""
        if self._bill is None:
            self._bill = self._price()
        return self._bill

    def _price(self) -> Bill:
        units = self.units()
        prices = self.prices
        if units is None:
            return FREE if prices is None else Bill(0.0, prices.currency, False)
        if prices is None or not prices.per_million:
            return Bill(0.0, prices.currency if prices is not None else "USD", True)
        return Bill(prices.cost(units), prices.currency, bool(unpriced_units(prices.per_million, units)))


_NO_USAGE = TokenUsage()


def billing_prices(index: SnapshotIndex, model: str, target: Target, ts: float) -> PriceTable:
    """The prices a call is billed at, those in effect at `ts`: the public model's (what
    callers are billed); for a main unit (MAIN_UNITS) the public model has no price for,
    the answering target's (`<provider>/<upstream model>`, what the provider charges) in
    the same currency. Empty when nothing is priced (the call is then `unpriced`).

    Sub-kinds (cache reads and writes, reasoning) are never taken from the target: the
    public model without them bills those tokens at its own input / output price."""
    public = index.prices_for(model, ts)
    own = index.price_at(target.price_name, ts)
    if own is None or not own.per_million:
        return public
    rates = public.per_million
    if not rates:
        return own
    if own.currency != public.currency:
        return public
    missing = {
        unit: own.per_million[unit] for unit in MAIN_UNITS if unit in own.per_million and unit not in rates
    }
    if not missing:
        return public
    return PriceTable(per_million=MappingProxyType({**rates, **missing}), currency=public.currency)


class UsageEmitter:
    """Turns finished calls into usage events on `<prefix>.<org>`; never blocks."""

    def __init__(self, publisher: EventPublisher, subject_prefix: str, metrics: Metrics) -> None:
        self._publisher = publisher
        self._prefix = subject_prefix
        self._metrics = metrics

    def emit(self, record: CallRecord) -> None:
        now = time.perf_counter()
        usage = record.usage or _NO_USAGE
        bill = record.bill()
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
            cache_write_tokens=usage.cache_creation_tokens,
            tokens_estimated=usage.estimated,
            images=record.images,
            pages=record.pages,
            audio_seconds=record.audio_seconds,
            characters=record.characters,
            cost=bill.cost,
            currency=bill.currency,
            unpriced=bill.unpriced,
            latency_ms=(now - record.started) * 1000.0,
            ttfb_ms=(record.ttfb - record.started) * 1000.0 if record.ttfb is not None else None,
            stream=record.stream,
            attempts=record.attempts,
            client_ip=record.client_ip,
            trace_id=trace.trace_id if trace is not None else record.caller_trace_id,
            key_name=key.name,
            client_disconnect=record.status == _CLIENT_CLOSED,
            refused_by=record.refused_by,
            shadow_refusals=record.shadow_refusals,
        )
        if record.audit is not None:
            try:
                record.audit.fill(event)
            except Exception:  # audit must never cost the call its usage event
                log.exception("audit data of call %s could not be captured", event.id)
        try:
            subject = f"{self._prefix}.{key.org_name}"
            self._publisher.publish_nowait(
                BusMessage(
                    subject=subject,
                    msg_id=event.id,
                    data=encode_event(event),
                    # The call's trace context travels in the message headers.
                    headers=trace.usage_headers(subject, event.id) if trace is not None else (),
                )
            )
        except Exception:  # a publisher failure must never turn into a failed call
            self._metrics.usage_publish_errors.inc()
            log.exception("usage event %s could not be handed to the publisher", event.id)
            return
        self._metrics.usage_events.inc()
