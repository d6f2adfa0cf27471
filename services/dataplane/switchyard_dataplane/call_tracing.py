"""The spans of one data-plane call, built only while tracing is enabled.

A SERVER span per call continues the caller's W3C `traceparent`; a CLIENT span per
upstream attempt is its child and is named in the `traceparent` sent upstream; a
PRODUCER span is the parent of the usage event, whose NATS headers carry its context.
Attributes follow the OpenTelemetry GenAI semantic conventions (`gen_ai.*`), plus
`switchyard.*` for what they do not cover (organization, key, provider slug). The
handler creates a `CallTrace` only when `TRACING.enabled`; otherwise it holds None and
nothing here runs (docs/adr/007-tracing.md).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from switchyard_common.errors import SwitchyardError
from switchyard_common.tracing import asgi_parent_context, get_tracer, trace_id_hex, traceparent_headers

from .asgi_io import Scope
from .providers.base import ApiFormat

if TYPE_CHECKING:
    from .index import Target
    from .usage_events import CallRecord

__all__ = ["CallTrace"]

_SCOPE = "switchyard.dataplane"

# gen_ai.operation.name per hot route (CallHandler.route); count_tokens has no
# well-known value, so it keeps its own name.
_OPERATIONS = {
    "chat_completions": "chat",
    "messages": "chat",
    "embeddings": "embeddings",
    "count_tokens": "count_tokens",
}

# gen_ai.provider.name well-known values per provider api_format.
_PROVIDER_NAMES: dict[str, str] = {
    ApiFormat.OPENAI: "openai",
    ApiFormat.AZURE: "azure.ai.openai",
    ApiFormat.ANTHROPIC: "anthropic",
    ApiFormat.GEMINI: "gcp.gemini",
    ApiFormat.MOCK: "switchyard.mock",
}


@lru_cache(maxsize=512)
def _server_address(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port


def _provider_name(api_format: str) -> str:
    return _PROVIDER_NAMES.get(api_format, api_format)


class _Attempt:
    __slots__ = ("span", "status")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.status: int | None = None


class CallTrace:
    """The server span of one call and the span of its current upstream attempt."""

    __slots__ = ("_attempt", "_operation", "_provider_name", "span", "trace_id")

    def __init__(self, scope: Scope, route: str) -> None:
        path: str = scope["path"]
        self._operation = _OPERATIONS.get(route, route)
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "http.route": path,
            "gen_ai.operation.name": self._operation,
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        self.span = get_tracer(_SCOPE).start_span(
            f"POST {path}",
            context=asgi_parent_context(scope["headers"]),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        self.trace_id = trace_id_hex(self.span)
        self._attempt: _Attempt | None = None
        self._provider_name: str | None = None

    # --- upstream attempts ----------------------------------------------------------

    def start_attempt(self, target: Target, url: str, local: bool) -> tuple[tuple[str, str], ...]:
        """Open the attempt's CLIENT span; returns the headers that name it upstream
        (none for adapters that answer in-process)."""
        self._end_attempt(None)
        runtime = target.runtime
        self._provider_name = _provider_name(runtime.api_format)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self._operation,
            "gen_ai.provider.name": self._provider_name,
            "gen_ai.request.model": target.upstream_model,
            "switchyard.provider": runtime.slug,
        }
        if not local:
            host, port = _server_address(url)
            attributes["server.address"] = host
            if port is not None:
                attributes["server.port"] = port
        span = get_tracer(_SCOPE).start_span(
            f"{self._operation} {target.upstream_model}",
            context=trace.set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        self._attempt = _Attempt(span)
        return () if local else traceparent_headers(span)

    def attempt_status(self, status: int) -> None:
        """The upstream answered with `status` (its body may still be on its way)."""
        attempt = self._attempt
        if attempt is not None:
            attempt.status = status

    def end_attempt(self, outcome: str) -> None:
        """The attempt is over: "ok", "error", "timeout" or "unreachable"."""
        self._end_attempt(outcome)

    def _end_attempt(self, outcome: str | None) -> None:
        attempt = self._attempt
        if attempt is None:
            return
        self._attempt = None
        span = attempt.span
        status = attempt.status
        if outcome is None:  # the call ended before the handler recorded the attempt
            outcome = "incomplete" if status is None or status >= 400 else "ok"
        # One set_attributes call: each takes the span's lock and cleans every value.
        attributes: dict[str, Any] = {"switchyard.attempt.outcome": outcome}
        if status is not None:
            attributes["http.response.status_code"] = status
        if outcome != "ok":
            attributes["error.type"] = outcome if status is None else str(status)
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.set_attributes(attributes)
        span.end()

    # --- the usage event ------------------------------------------------------------

    def usage_headers(self, subject: str, event_id: str) -> tuple[tuple[str, str], ...]:
        """A PRODUCER span for the call's usage event, child of the server span, and the
        W3C headers naming it, for the NATS message (and the disk spool that may keep it
        first). The ingest continues the trace from them. The span only marks the hand-off
        to the publisher: publishing itself is batched and may wait for NATS."""
        span = get_tracer(_SCOPE).start_span(
            f"create {subject}",
            context=trace.set_span_in_context(self.span),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "create",
                "messaging.operation.name": "create",
                "messaging.destination.name": subject,
                "messaging.message.id": event_id,
            },
        )
        headers = traceparent_headers(span)
        span.end()
        return headers

    # --- the end of the call ----------------------------------------------------------

    def reject(self, exc: SwitchyardError) -> None:
        """The call was refused before it was authenticated (not ready, bad key)."""
        span = self.span
        span.set_attributes({"http.response.status_code": exc.status, "error.type": exc.error_type})
        if exc.status >= 500:
            span.set_status(Status(StatusCode.ERROR, exc.error_type))
        span.end()

    def finish(self, record: CallRecord) -> None:
        self._end_attempt(None)
        span = self.span
        if span.is_recording():
            status = record.status
            key = record.key
            attributes: dict[str, Any] = {
                "http.response.status_code": status,
                "gen_ai.request.model": record.model,
                "switchyard.org": key.org_name,
                "switchyard.key_id": key.id,
                "switchyard.stream": record.stream,
                "switchyard.attempts": len(record.attempts),
            }
            if record.provider:
                attributes["switchyard.provider"] = record.provider
            if self._provider_name is not None:
                attributes["gen_ai.provider.name"] = self._provider_name
            if status < 400 and record.upstream_model:
                # The model of the target that answered (the body's own `model` field
                # is not parsed on the passthrough path).
                attributes["gen_ai.response.model"] = record.upstream_model
            usage = record.usage
            if usage is not None:
                attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
                attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
                if usage.estimated:
                    attributes["switchyard.tokens_estimated"] = True
            if record.error_type is not None:
                attributes["error.type"] = record.error_type
            span.set_attributes(attributes)
            # Server spans: 4xx are the caller's doing, not errors (HTTP conventions);
            # a success status with an error type is an answer broken mid-stream.
            if status >= 500 or (status < 400 and record.error_type is not None):
                span.set_status(Status(StatusCode.ERROR, record.error_type or str(status)))
        span.end()
