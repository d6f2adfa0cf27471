"""Usage and billing reads over the per-minute rollups (`usage_rollups_minute`), for the
control plane's usage API. SQLite (embedded) and Postgres.

The time range selects whole minutes: a minute is in `[start, end)` when it starts
before `end` and at or after `start` rounded down to its minute, so a range always
contains every call it overlaps. Buckets of the time series are UTC minutes, hours or
days. Costs are summed per currency: every row carries its `currency`, and grouping
always splits by it (adding dollars to euros would be meaningless).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Select, func, literal_column, select

from .db import as_utc
from .usage_rollups import (
    FLOAT_SUMS,
    INT_SUMS,
    LATENCY_BUCKETS,
    SUM_COLUMNS,
    usage_rollups_minute,
)

__all__ = [
    "DIMENSIONS",
    "GRANULARITIES",
    "METRIC_COLUMNS",
    "BillingSummary",
    "Granularity",
    "billing_summary",
    "floor_minute",
    "parse_group_by",
    "query_timeseries",
    "query_totals",
]

Granularity = Literal["minute", "hour", "day"]
GRANULARITIES: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}

_T = usage_rollups_minute.c
# Group-by / filter name -> (rollup column, name of the column in result rows).
DIMENSIONS: dict[str, tuple[Any, str]] = {
    "org": (_T.org, "org"),
    "key": (_T.key_id, "key_id"),
    "model": (_T.model, "model"),
    "provider": (_T.provider, "provider"),
    "capability": (_T.capability, "capability"),
}

# The counts and amounts a result row reports as they are (the latency sums and the
# time-to-first-byte count only serve the averages).
_INT_METRICS = tuple(name for name in INT_SUMS if name != "ttfb_count")
_FLOAT_METRICS = tuple(name for name in FLOAT_SUMS if not name.endswith("_ms_sum"))
# What every result row carries besides its group and bucket columns, in CSV order.
METRIC_COLUMNS: tuple[str, ...] = (
    "currency",
    *_INT_METRICS,
    *_FLOAT_METRICS,
    "avg_latency_ms",
    "avg_ttfb_ms",
    "p50_latency_ms",
    "p95_latency_ms",
)


def floor_minute(value: datetime) -> datetime:
    """`value` in UTC (naive = UTC already), rounded down to its minute."""
    return as_utc(value).replace(second=0, microsecond=0)


def parse_group_by(values: Sequence[str]) -> list[str]:
    """Group names from repeated and/or comma-separated values, in order, without
    duplicates; ValueError naming an unknown one."""
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in DIMENSIONS:
                raise ValueError(f"unknown group {name!r} (use {', '.join(DIMENSIONS)})")
            if name not in names:
                names.append(name)
    return names


def _sums() -> list[ColumnElement[Any]]:
    return [func.coalesce(func.sum(_T[name]), 0).label(name) for name in SUM_COLUMNS]


def _filtered(
    stmt: Select[Any], start: datetime, end: datetime, filters: Mapping[str, str | None]
) -> Select[Any]:
    stmt = stmt.where(_T.minute >= floor_minute(start), _T.minute < as_utc(end))
    for name, value in filters.items():
        if value is None:
            continue
        if name not in DIMENSIONS:
            raise ValueError(f"unknown filter {name!r} (use {', '.join(DIMENSIONS)})")
        stmt = stmt.where(DIMENSIONS[name][0] == value)
    return stmt


def _quantile_bound(row: Mapping[Any, Any], q: float) -> float | None:
    """Upper bound (ms) of the histogram bucket holding the q-quantile; None when it
    lies past the last finite bound (or there are no calls)."""
    total = int(row["le_inf"])
    if total <= 0:
        return None
    rank = q * total
    for name, bound in LATENCY_BUCKETS:
        if int(row[name]) >= rank:
            return None if bound == float("inf") else bound
    return None


def _metrics(row: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"currency": row["currency"]}
    for name in _INT_METRICS:
        out[name] = int(row[name])
    for name in _FLOAT_METRICS:
        out[name] = float(row[name])
    requests = out["requests"]
    ttfb_count = int(row["ttfb_count"])
    out["avg_latency_ms"] = float(row["latency_ms_sum"]) / requests if requests else 0.0
    out["avg_ttfb_ms"] = float(row["ttfb_ms_sum"]) / ttfb_count if ttfb_count else None
    out["p50_latency_ms"] = _quantile_bound(row, 0.5)
    out["p95_latency_ms"] = _quantile_bound(row, 0.95)
    return out


def query_totals(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    group_by: Sequence[str] = ("model",),
    filters: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """Totals per group (any of DIMENSIONS, and always per currency) over the range,
    ordered by the group values. An empty `group_by` gives one row per currency."""
    groups = [DIMENSIONS[name] for name in group_by]
    group_cols = [col.label(label) for col, label in groups]
    stmt: Select[Any] = select(*group_cols, _T.currency, *_sums())
    stmt = _filtered(stmt, start, end, filters or {})
    order = [*(col for col, _ in groups), _T.currency]
    stmt = stmt.group_by(*order).order_by(*order)
    result = []
    for row in conn.execute(stmt).mappings():
        item = {label: row[label] for _, label in groups}
        item.update(_metrics(row))
        result.append(item)
    return result


def _bucket_expression(conn: Connection, granularity: Granularity) -> ColumnElement[Any]:
    if granularity == "minute":
        return _T.minute
    # Literals, not bound parameters: the expression is repeated in GROUP BY and ORDER
    # BY, and Postgres only sees them as the same expression with identical text.
    if conn.dialect.name == "postgresql":
        # The 3-argument form truncates in UTC whatever the session's time zone.
        return func.date_trunc(literal_column(f"'{granularity}'"), _T.minute, literal_column("'UTC'"))
    if conn.dialect.name == "sqlite":
        # SQLite keeps UTC timestamps as ISO text: truncating is formatting.
        fmt = "%Y-%m-%d %H:00:00" if granularity == "hour" else "%Y-%m-%d 00:00:00"
        return func.strftime(literal_column(f"'{fmt}'"), _T.minute)
    raise ValueError(f"time series are not supported on {conn.dialect.name}")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def query_timeseries(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    granularity: Granularity,
    group_by: Sequence[str] = (),
    filters: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (bucket, group, currency) that has usage, ordered by bucket then
    group; `bucket` is the UTC start of the minute, hour or day. Empty buckets are
    absent (a chart fills them with zeros)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    groups = [DIMENSIONS[name] for name in group_by]
    bucket = _bucket_expression(conn, granularity).label("bucket")
    stmt: Select[Any] = select(bucket, *(col.label(label) for col, label in groups), _T.currency, *_sums())
    stmt = _filtered(stmt, start, end, filters or {})
    order = [bucket, *(col for col, _ in groups), _T.currency]
    stmt = stmt.group_by(*order).order_by(*order)
    result = []
    for row in conn.execute(stmt).mappings():
        item: dict[str, Any] = {"bucket": _as_datetime(row["bucket"])}
        item.update({label: row[label] for _, label in groups})
        item.update(_metrics(row))
        result.append(item)
    return result


@dataclass(slots=True)
class BillingSummary:
    org: str
    start: datetime
    end: datetime
    # One line per (model, currency): usage and cost.
    lines: list[dict[str, Any]]
    # currency -> {"cost", "requests", "unpriced_requests"}
    totals: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "lines": self.lines,
            "totals": [{"currency": currency, **values} for currency, values in sorted(self.totals.items())],
        }


def billing_summary(conn: Connection, *, org: str, start: datetime, end: datetime) -> BillingSummary:
    """What `org` is billed for in the range: a line per model (and currency) with its
    units and cost, and the totals per currency. `unpriced_requests` counts the calls
    admitted without a price (billed 0: see the org's `unpriced` policy)."""
    lines = query_totals(conn, start=start, end=end, group_by=("model",), filters={"org": org})
    totals: dict[str, dict[str, Any]] = {}
    for line in lines:
        total = totals.setdefault(line["currency"], {"cost": 0.0, "requests": 0, "unpriced_requests": 0})
        total["cost"] += line["cost"]
        total["requests"] += line["requests"]
        total["unpriced_requests"] += line["unpriced_requests"]
    return BillingSummary(org=org, start=floor_minute(start), end=as_utc(end), lines=lines, totals=totals)
