"""`x-request-id` on every admin-API response, and the request's ids on its log lines.

An incoming `x-request-id` is kept when it is a sane token (a proxy or the caller
chose it), otherwise one is made; either way it is echoed in the response and bound
(switchyard_common.logs) while the request runs. The trace id of log lines comes from
the request's span, which TracingMiddleware makes current. With
`SWITCHYARD_ACCESS_LOG=true` each request also gets one `switchyard.access` line.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from switchyard_common.logs import ACCESS_LOGGER, accept_request_id, bind_call, reset_call

from .request_tracing import route_template

__all__ = ["RequestIdMiddleware"]

_ACCESS = logging.getLogger(ACCESS_LOGGER)
# Probes and scrapes would drown the admin requests in the access log.
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestIdMiddleware:
    """Pure ASGI (BaseHTTPMiddleware would buffer and re-wrap every response)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = next((value for name, value in scope["headers"] if name == b"x-request-id"), None)
        request_id = accept_request_id(incoming)
        header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = bind_call(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if _ACCESS.isEnabledFor(logging.INFO) and scope["path"] not in _QUIET:
                _log_request(scope, status, started)
            reset_call(token)


def _log_request(scope: Scope, status: int, started: float) -> None:
    method: str = scope["method"]
    route = route_template(scope) or scope["path"]
    latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
    _ACCESS.info(
        "%s %s -> %d (%.1f ms)",
        method,
        route,
        status,
        latency_ms,
        extra={"method": method, "route": route, "status": status, "latency_ms": latency_ms},
    )
