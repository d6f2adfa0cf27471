"""Usage report from the usage tables written by usage-ingest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from sqlalchemy import Engine
from switchyard_common.errors import InvalidRequest
from switchyard_common.usage_store import GroupBy, query_usage

from ...deps import AdminDep, ContextDep

router = APIRouter(tags=["usage"])

_DEFAULT_WINDOW = timedelta(days=1)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _query(engine: Engine, start: datetime, end: datetime, group_by: GroupBy) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return query_usage(conn, start=start, end=end, group_by=group_by)


@router.get("/usage")
async def usage(
    context: ContextDep,
    _admin: AdminDep,
    start: datetime | None = None,
    end: datetime | None = None,
    group_by: Literal["model", "key", "org"] = "model",
) -> dict[str, Any]:
    """Totals between `start` (inclusive) and `end` (exclusive), ISO 8601; naive times are UTC.
    Defaults to the last 24 hours."""
    end = _aware(end) if end is not None else datetime.now(UTC)
    start = _aware(start) if start is not None else end - _DEFAULT_WINDOW
    if start >= end:
        raise InvalidRequest("start must be before end", code="invalid_range", param="start")
    rows = await asyncio.to_thread(_query, context.engine, start, end, group_by)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "group_by": group_by,
        "rows": jsonable_encoder(rows),
    }
