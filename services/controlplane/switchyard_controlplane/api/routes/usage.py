"""Usage reports from the per-minute rollups written by usage-ingest: totals and time
series grouped by any of org / key / model / provider / capability, as JSON or CSV."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from sqlalchemy import Connection, Engine, select
from switchyard_common.db import as_utc
from switchyard_common.errors import InvalidRequest
from switchyard_common.usage_queries import (
    GRANULARITIES,
    METRIC_COLUMNS,
    Granularity,
    parse_group_by,
    query_timeseries,
    query_totals,
)

from ...db.models import ApiKey
from ...deps import AdminDep, AppContext, ContextDep
from ..csv_export import ReportFormat, csv_response, wants_csv

router = APIRouter(tags=["usage"])

_DEFAULT_WINDOW = timedelta(days=1)
# A time series longer than this many buckets is refused: ask for a coarser granularity.
MAX_BUCKETS = 10_000

GroupByQuery = Annotated[
    list[str] | None,
    Query(description="org, key, model, provider, capability: repeated or comma-separated"),
]


def time_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """`start` / `end` as aware UTC times (naive = UTC); the last 24 hours by default."""
    end = as_utc(end) if end is not None else datetime.now(UTC)
    start = as_utc(start) if start is not None else end - _DEFAULT_WINDOW
    if start >= end:
        raise InvalidRequest("start must be before end", code="invalid_range", param="start")
    return start, end


def _groups(values: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    if values is None:
        return list(default)
    try:
        return parse_group_by(values)
    except ValueError as exc:
        raise InvalidRequest(str(exc), code="invalid_group_by", param="group_by") from None


def usage_filters(
    org: str | None = None,
    key: Annotated[str | None, Query(description="API key id")] = None,
    model: str | None = None,
    provider: str | None = None,
    capability: str | None = None,
) -> dict[str, str | None]:
    """The filter query parameters every usage report takes."""
    return {"org": org, "key": key, "model": model, "provider": provider, "capability": capability}


FiltersQuery = Annotated[dict[str, str | None], Depends(usage_filters)]


def _with_key_names(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Adds `key_name` to rows grouped by key (the rollups keep only the id)."""
    ids = {row["key_id"] for row in rows if "key_id" in row}
    if not ids:
        return
    with engine.connect() as conn:
        names = dict(conn.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(ids))).all())
    for row in rows:
        if "key_id" in row:
            row["key_name"] = names.get(row["key_id"])


def _columns(groups: Sequence[str], *, bucket: bool = False) -> list[str]:
    labels = {"key": "key_id"}
    columns = ["bucket"] if bucket else []
    for name in groups:
        columns.append(labels.get(name, name))
        if name == "key":
            columns.append("key_name")
    return [*columns, *METRIC_COLUMNS]


async def _report(
    request: Request,
    context: AppContext,
    format: ReportFormat | None,
    query: Callable[[Connection], list[dict[str, Any]]],
    *,
    csv: tuple[list[str], str],
    header: dict[str, Any],
) -> dict[str, Any] | Response:
    """Run `query` off the event loop (rows grouped by key get their key names) and
    answer CSV (`csv` = columns, file name) or JSON: `header` and the rows."""

    def run() -> list[dict[str, Any]]:
        with context.engine.connect() as conn:
            rows = query(conn)
        _with_key_names(context.engine, rows)
        return rows

    rows = await asyncio.to_thread(run)
    if wants_csv(request, format):
        return csv_response(rows, *csv)
    return {**header, "rows": jsonable_encoder(rows)}


def _header(
    start: datetime, end: datetime, groups: Sequence[str], filters: dict[str, str | None], **extra: str
) -> dict[str, Any]:
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        **extra,
        "group_by": ",".join(groups),
        "filters": {name: value for name, value in filters.items() if value is not None},
    }


@router.get("/usage", response_model=None)
async def usage(
    request: Request,
    context: ContextDep,
    _admin: AdminDep,
    filters: FiltersQuery,
    start: datetime | None = None,
    end: datetime | None = None,
    group_by: GroupByQuery = None,
    format: ReportFormat | None = None,
) -> dict[str, Any] | Response:
    """Totals per group between `start` (inclusive, rounded down to its minute) and `end`
    (exclusive), ISO 8601, naive times are UTC; the last 24 hours by default. Grouped by
    `model` unless `group_by` says otherwise (empty: one row per currency); every row
    is per currency. `format=csv` (or `Accept: text/csv`) answers CSV."""
    start, end = time_range(start, end)
    groups = _groups(group_by, ("model",))
    return await _report(
        request,
        context,
        format,
        lambda conn: query_totals(conn, start=start, end=end, group_by=groups, filters=filters),
        csv=(_columns(groups), "usage.csv"),
        header=_header(start, end, groups, filters),
    )


@router.get("/usage/timeseries", response_model=None)
async def usage_timeseries(
    request: Request,
    context: ContextDep,
    _admin: AdminDep,
    filters: FiltersQuery,
    start: datetime | None = None,
    end: datetime | None = None,
    granularity: Granularity = "hour",
    group_by: GroupByQuery = None,
    format: ReportFormat | None = None,
) -> dict[str, Any] | Response:
    """Usage per UTC `minute`, `hour` or `day` bucket (and per group, and currency) over
    the range; buckets without usage are absent. At most MAX_BUCKETS buckets."""
    start, end = time_range(start, end)
    if (end - start) / GRANULARITIES[granularity] > MAX_BUCKETS:
        raise InvalidRequest(
            f"the range holds more than {MAX_BUCKETS} {granularity} buckets: "
            "narrow it or use a coarser granularity",
            code="too_many_buckets",
            param="granularity",
        )
    groups = _groups(group_by, ())
    return await _report(
        request,
        context,
        format,
        lambda conn: query_timeseries(
            conn, start=start, end=end, granularity=granularity, group_by=groups, filters=filters
        ),
        csv=(_columns(groups, bucket=True), "usage-timeseries.csv"),
        header=_header(start, end, groups, filters, granularity=granularity),
    )
