"""The ingest's small HTTP surface: /healthz, /readyz, /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from switchyard_common.tracing import fastapi_options

from .metrics import IngestMetrics

__all__ = ["build_app"]

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
ScrapeHook = Callable[[], Awaitable[None]]


def build_app(
    metrics: IngestMetrics, readiness: ReadinessCheck, before_scrape: ScrapeHook | None = None
) -> FastAPI:
    """`before_scrape` refreshes what is measured at scrape time (the consumer's lag)."""
    app = FastAPI(
        title="Switchyard usage ingest", docs_url=None, redoc_url=None, openapi_url=None, **fastapi_options()
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        if before_scrape is not None:
            await before_scrape()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
