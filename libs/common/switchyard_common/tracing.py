"""OpenTelemetry tracing for every tier, off unless the standard OTel environment asks.

Tracing is enabled by `configure_tracing` when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and `OTEL_SDK_DISABLED` is not true; spans
then go over OTLP HTTP/protobuf through a BatchSpanProcessor (whose export runs on its
own thread, never in the event loop). Sampling (`OTEL_TRACES_SAMPLER`/`_ARG`), resource
attributes (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), exporter headers, timeouts
and batch sizes come from the SDK's own environment handling. This module is the only
place that reads OTEL_* variables: they are the OTel standard, not Switchyard settings.

Hot paths test `TRACING.enabled` (one attribute read) and build no span, context or
header when it is false. Propagation is W3C Trace Context only: `baggage` is neither
read nor forwarded, so nothing a caller puts there reaches third-party providers
(docs/adr/007-tracing.md).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanContext, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACING",
    "TracingState",
    "asgi_parent_context",
    "configure_tracing",
    "fastapi_options",
    "flush_tracing",
    "get_tracer",
    "install_test_exporter",
    "remote_span_context",
    "shutdown_tracing",
    "trace_id_hex",
    "traceparent_headers",
    "tracing_enabled",
]

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = (b"traceparent", b"tracestate")
_TRACE_NAMES = frozenset(("traceparent", "tracestate"))


class TracingState:
    """The process's tracing switch and provider. One per process (OTel's own provider
    is process-global too); replaced only by configure / shutdown, never per call."""

    __slots__ = ("configured", "enabled", "provider", "tracers")

    def __init__(self) -> None:
        self.enabled = False
        # configure_tracing has decided (either way): later calls keep that decision.
        self.configured = False
        self.provider: TracerProvider | None = None
        self.tracers: dict[str, Tracer] = {}


TRACING = TracingState()
_lock = threading.Lock()
_global_provider_set = False


def tracing_enabled() -> bool:
    return TRACING.enabled


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _wanted() -> bool:
    if _env_true("OTEL_SDK_DISABLED"):
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return bool(endpoint and endpoint.strip())


def _warn_unsupported() -> None:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter and exporter != "otlp":
        log.warning("OTEL_TRACES_EXPORTER=%s is not supported: spans go over OTLP", exporter)
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    ) or "http/protobuf"
    if protocol.strip().lower() != "http/protobuf":
        log.warning("OTLP protocol %s is not supported: spans are sent as http/protobuf", protocol)


def _resource(service_name: str) -> Resource:
    # Resource.create lets explicit attributes win over the environment; the standard
    # says OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win, so ours are only defaults.
    detected = OTELResourceDetector().detect().attributes
    defaults: dict[str, str] = {}
    if not detected.get(SERVICE_NAME):
        defaults[SERVICE_NAME] = service_name
    if not detected.get(SERVICE_VERSION):
        with contextlib.suppress(metadata.PackageNotFoundError):
            defaults[SERVICE_VERSION] = metadata.version("switchyard")
    return Resource.create(defaults)


def _install(provider: TracerProvider) -> None:
    TRACING.provider = provider
    TRACING.tracers = {}
    TRACING.configured = True
    TRACING.enabled = True


def configure_tracing(service_name: str) -> bool:
    """Enable tracing if the OTel environment asks for it; True when enabled.

    Idempotent: the first call in a process decides (so `switchyard up` configures once
    for its three tiers and each tier's own call changes nothing); later calls return
    that decision until `shutdown_tracing`."""
    global _global_provider_set
    with _lock:
        if TRACING.configured:
            return TRACING.enabled
        if not _wanted():
            TRACING.configured = True
            return False
        _warn_unsupported()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The sampler comes from OTEL_TRACES_SAMPLER / _ARG (default parentbased_always_on);
        # the provider flushes and shuts down at interpreter exit (shutdown_on_exit).
        provider = TracerProvider(resource=_resource(service_name))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _install(provider)
        # The API allows one global provider per process: set it for third-party
        # instrumentation once, keep our own reference for everything else.
        if not _global_provider_set:
            trace.set_tracer_provider(provider)
            _global_provider_set = True
        log.info("tracing enabled: OTLP spans of %s", provider.resource.attributes.get(SERVICE_NAME))
        return True


def install_test_exporter(exporter: SpanExporter, service_name: str = "switchyard-test") -> TracerProvider:
    """Tests: enable tracing with spans handed synchronously to `exporter` (e.g. an
    InMemorySpanExporter), whatever the environment says. Undo with shutdown_tracing."""
    with _lock:
        resource = Resource.create({SERVICE_NAME: service_name})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        if TRACING.provider is not None:
            TRACING.provider.shutdown()
        _install(provider)
        return provider


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export the spans still queued (a tier stopping while others in the process go on)."""
    provider = TRACING.provider
    if provider is not None:
        provider.force_flush(timeout_millis)


def shutdown_tracing() -> None:
    """Flush, stop the exporter and turn tracing off; a later configure decides anew."""
    with _lock:
        provider = TRACING.provider
        TRACING.enabled = False
        TRACING.configured = False
        TRACING.provider = None
        TRACING.tracers = {}
        if provider is not None:
            provider.shutdown()


def get_tracer(name: str) -> Tracer:
    """The tracer of instrumentation scope `name` (cached); a no-op one when disabled."""
    tracer = TRACING.tracers.get(name)
    if tracer is not None:
        return tracer
    provider = TRACING.provider
    if provider is None:
        return trace.NoOpTracer()
    tracer = provider.get_tracer(name)
    TRACING.tracers[name] = tracer
    return tracer


def fastapi_options() -> dict[str, Any]:
    """Keyword arguments for `FastAPI(...)` that turn off FastAPI's own OpenTelemetry
    (FastAPI >= 0.160 traces every request, dependency and serialization step through
    the global provider once one is set). Our spans are deliberate (ADR 007): probes and
    scrapes untraced, routes named by template, hot routes outside FastAPI; a second set
    of server spans per request would double the cost and the noise."""
    try:
        parameters = inspect.signature(FastAPI.__init__).parameters
    except (TypeError, ValueError):
        return {}
    if "telemetry" not in parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


def asgi_parent_context(headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
    """The caller's W3C trace context from raw ASGI headers (lower-case names), if any."""
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name in _TRACE_HEADERS:
            carrier[name.decode("latin-1")] = value.decode("latin-1")
    if not carrier:
        return None
    return _PROPAGATOR.extract(carrier)


def remote_span_context(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> SpanContext | None:
    """The valid W3C span context in message headers (`traceparent`, `tracestate`), if
    any: what a consumer continues. Header names are matched case-insensitively."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {name.lower(): value for name, value in pairs if name.lower() in _TRACE_NAMES}
    if "traceparent" not in carrier:
        return None
    context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return context if context.is_valid else None


def traceparent_headers(span: Span) -> tuple[tuple[str, str], ...]:
    """`traceparent` (and `tracestate`) naming `span` as the parent, for an outgoing
    request. Formatted here as TraceContextTextMapPropagator.inject does, without its
    context and carrier objects (this runs once per upstream attempt)."""
    context = span.get_span_context()
    if not context.is_valid:
        return ()
    parent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    if context.trace_state:
        return (("traceparent", parent), ("tracestate", context.trace_state.to_header()))
    return (("traceparent", parent),)


def trace_id_hex(span: Span) -> str | None:
    """The span's trace id as 32 lower-case hex digits (the usage event's `trace_id`)."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id)
