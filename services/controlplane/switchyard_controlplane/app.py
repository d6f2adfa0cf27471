"""The admin REST API application (FastAPI, OpenAPI at /docs)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import Engine
from starlette.types import ASGIApp
from switchyard_common.secrets import SecretBox
from switchyard_common.tracing import fastapi_options

from . import metrics
from .api.errors import install_error_handlers
from .api.routes import (
    admin_tokens,
    audit,
    auth,
    billing,
    config,
    dead_letters,
    governance,
    keys,
    models,
    organizations,
    prices,
    providers,
    system,
    usage,
)
from .deps import AppContext
from .repo import make_sessionmaker
from .request_ids import RequestIdMiddleware
from .request_tracing import TracingMiddleware, route_template
from .settings import ControlPlaneSettings
from .snapshot_hub import SnapshotHub

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


class _AdminApi(FastAPI):
    """The request's span and request id wrap the whole middleware stack. Starlette
    answers unhandled errors (and oversized bodies) from middlewares it puts outside
    every `add_middleware` one, so there the 500 would lack `x-request-id` and the
    error's log line the request's ids."""

    def build_middleware_stack(self) -> ASGIApp:
        # Request ids inside the span, so the access-log line carries the trace id.
        return TracingMiddleware(RequestIdMiddleware(super().build_middleware_stack()))


def create_app(settings: ControlPlaneSettings, engine: Engine, hub: SnapshotHub) -> FastAPI:
    app = _AdminApi(
        title="Switchyard control plane",
        summary="Admin API: organizations, providers, models, prices, API keys, config as code, usage.",
        version="1",
        # FastAPI's own spans off: TracingMiddleware makes ours (ADR 007).
        **fastapi_options(),
    )
    app.state.context = AppContext(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        hub=hub,
        box=SecretBox(settings.secret_key),
    )
    install_error_handlers(app)

    v1 = APIRouter(prefix=API_PREFIX)
    for module in (auth, admin_tokens, organizations, providers, models, prices, keys, config, usage, audit):
        v1.include_router(module.router)
    v1.include_router(billing.router)
    v1.include_router(dead_letters.router)
    v1.include_router(governance.router)
    v1.include_router(system.api)
    app.include_router(v1)
    app.include_router(system.probes)

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            # Route templates, not raw paths, keep label cardinality bounded.
            template = route_template(request.scope) or "unmatched"
            metrics.HTTP_REQUESTS.labels(request.method, template, str(status)).inc()
            metrics.HTTP_LATENCY.labels(template).observe(time.perf_counter() - started)

    # RequestIdMiddleware and TracingMiddleware: outermost, see _AdminApi.
    return app
