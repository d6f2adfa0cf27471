"""Spans of the control plane: one SERVER span per admin-API request (an ASGI
middleware continuing the caller's W3C `traceparent`), and the helpers the snapshot
hub and the gRPC service use for rebuild and push spans. Nothing is built while
tracing is off (switchyard_common.tracing)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from switchyard_common.tracing import TRACING, asgi_parent_context, get_tracer

__all__ = ["TracingMiddleware", "route_template", "tracer"]

# Probes and scrapes arrive every few seconds from every orchestrator and Prometheus:
# spans of them would drown the admin calls.
_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})


def route_template(scope: Scope) -> str | None:
    """The matched route's full template. FastAPI keeps the routes of included routers
    relative to their router (`scope["route"].path` lacks the `/api/v1` prefix) and puts
    the full one in its effective route context."""
    extension = scope.get("fastapi")
    effective = extension.get("effective_route_context") if isinstance(extension, dict) else None
    template = getattr(effective, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else None


def tracer() -> Tracer:
    return get_tracer("switchyard.controlplane")


class TracingMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it would buffer and re-wrap every response)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not TRACING.enabled or scope["path"] in _UNTRACED:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        span = tracer().start_span(
            method,
            context=asgi_parent_context(scope["headers"]),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            # Current while the request runs, so spans started inside nest under it.
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                await self.app(scope, receive, send_observed)
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            # Route templates, not raw paths, name the span (bounded cardinality).
            template = route_template(scope)
            if template:
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
            span.end()
