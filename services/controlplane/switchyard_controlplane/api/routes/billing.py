"""Billing summary of one organization for a period: a cost line per model and the
totals per currency, from the per-minute rollups (the costs the data plane computed
from the snapshot's prices and carried in each usage event)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from switchyard_common.errors import InvalidRequest, NotFound
from switchyard_common.usage_queries import METRIC_COLUMNS, billing_summary

from ...db.models import Organization
from ...deps import AdminDep, ContextDep
from ..csv_export import ReportFormat, csv_response, wants_csv
from .usage import time_range

router = APIRouter(prefix="/billing", tags=["billing"])

_PERIOD = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


def period_range(period: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` (a calendar month) or `YYYY-MM-DD` (a day), in UTC."""
    match = _PERIOD.match(period)
    if not match:
        raise InvalidRequest(
            f"period must be YYYY-MM or YYYY-MM-DD, not {period!r}", code="invalid_period", param="period"
        )
    year, month, day = int(match.group(1)), int(match.group(2)), match.group(3)
    try:
        if day is not None:
            start = datetime(year, month, int(day), tzinfo=UTC)
            return start, start + timedelta(days=1)
        start = datetime(year, month, 1, tzinfo=UTC)
    except ValueError as exc:
        raise InvalidRequest(f"period {period!r}: {exc}", code="invalid_period", param="period") from None
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else datetime(year, month + 1, 1, tzinfo=UTC)
    return start, end


def _this_month() -> tuple[datetime, datetime]:
    return period_range(datetime.now(UTC).strftime("%Y-%m"))


@router.get("/summary", response_model=None)
async def summary(
    request: Request,
    context: ContextDep,
    _admin: AdminDep,
    org: Annotated[str, Query(description="organization name")],
    period: Annotated[str | None, Query(description="YYYY-MM or YYYY-MM-DD (UTC)")] = None,
    start: datetime | None = None,
    end: datetime | None = None,
    format: ReportFormat | None = None,
) -> dict[str, Any] | Response:
    """Per-model cost lines and totals per currency for `org`, over `period`, or
    `start`..`end`, or the current calendar month (UTC). `unpriced_requests` counts
    calls admitted without a price (billed 0). `format=csv` (or `Accept: text/csv`)
    answers CSV: the model lines, then one `total` line per currency."""
    if period is not None and (start is not None or end is not None):
        raise InvalidRequest("give either period or start/end", code="invalid_range", param="period")
    if period is not None:
        start, end = period_range(period)
    elif start is None and end is None:
        start, end = _this_month()
    else:
        start, end = time_range(start, end)
    range_start, range_end = start, end

    def run() -> dict[str, Any]:
        with context.engine.connect() as conn:
            if conn.scalar(select(Organization.id).where(Organization.name == org)) is None:
                raise NotFound(f"unknown organization '{org}'", code="not_found", param="org")
            return billing_summary(conn, org=org, start=range_start, end=range_end).as_dict()

    result = await asyncio.to_thread(run)
    if period is not None:
        result["period"] = period
    if wants_csv(request, format):
        rows = [{"line": "model", **line} for line in result["lines"]]
        rows += [{"line": "total", **total} for total in result["totals"]]
        return csv_response(
            rows, ["line", "model", *METRIC_COLUMNS], f"billing-{org}-{period or 'range'}.csv"
        )
    return jsonable_encoder(result)
