"""The admin REST API application (FastAPI, OpenAPI at /docs)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import Engine
from switchyard_common.secrets import SecretBox

from . import metrics
from .api.errors import install_error_handlers
from .api.routes import (
    admin_tokens,
    auth,
    config,
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
from .request_tracing import TracingMiddleware, route_template
from .settings import ControlPlaneSettings
from .snapshot_hub import SnapshotHub

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


def create_app(settings: ControlPlaneSettings, engine: Engine, hub: SnapshotHub) -> FastAPI:
    app = FastAPI(
        title="Switchyard control plane",
        summary="Admin API: organizations, providers, models, prices, API keys, config as code, usage.",
        version="1",
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
    for module in (auth, admin_tokens, organizations, providers, models, prices, keys, config, usage):
        v1.include_router(module.router)
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

    # Added last, so outermost: the span covers the metrics middleware and error handlers.
    app.add_middleware(TracingMiddleware)
    return app
