"""Probes, metrics and the snapshot version (no authentication on probes and metrics)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text

from ... import repo
from ...deps import AdminDep, ContextDep, SessionDep

probes = APIRouter(tags=["system"])
api = APIRouter(tags=["system"])


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@probes.get("/readyz")
async def readyz(context: ContextDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.to_thread(_ping, context.engine)
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"error: {type(exc).__name__}"
    checks["snapshot"] = "ok" if context.hub.current is not None else "not built"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@probes.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@api.get("/snapshot")
def snapshot(session: SessionDep, context: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    """`version`: committed in the database; `served_version`: what this replica streams."""
    stored = repo.read_config_version(session)
    current = context.hub.current
    return {
        "version": stored.version,
        "id": stored.snapshot_id,
        "served_version": current.version if current is not None else None,
    }
