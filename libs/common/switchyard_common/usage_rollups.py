"""Per-minute usage rollups: the table and the aggregation of events into it.

`usage_rollups_minute` holds one row per (minute, org, key, model, provider,
capability, status, currency) with sums of everything a call is metered by. The ingest
adds to it, in the same transaction as the ledger insert, exactly the events that
insert created, so a redelivered event (a no-op in the ledger) never counts twice. The
control plane's usage and billing API reads it instead of scanning the ledger.

Latency histogram: fixed, *cumulative* bucket columns in the Prometheus style:
`le_250ms` counts the calls that took at most 250 ms (so it includes those counted in
`le_100ms`), and `le_inf` equals `requests`. Cumulative buckets add up across rows and
minutes, so any coarser rollup is a plain SUM per column.

The aggregation is pure Python over events (`aggregate`); `RollupRow` carries one
group's sums and is what the upsert writes and what the time-series writer exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    text,
)
from sqlalchemy.dialects import sqlite

from .db import METADATA
from .usage import UsageEvent

__all__ = [
    "BUCKET_COLUMNS",
    "FLOAT_SUMS",
    "GROUP_COLUMNS",
    "INT_SUMS",
    "LATENCY_BUCKETS",
    "SUM_COLUMNS",
    "RollupKey",
    "RollupRow",
    "aggregate",
    "micros_to_datetime",
    "minute_start",
    "upsert_rollups",
    "ts_micros",
    "usage_rollups_minute",
]

# (column, upper bound in ms) of the cumulative latency histogram; le_inf is every call.
LATENCY_BUCKETS: tuple[tuple[str, float], ...] = (
    ("le_100ms", 100.0),
    ("le_250ms", 250.0),
    ("le_500ms", 500.0),
    ("le_1s", 1000.0),
    ("le_2500ms", 2500.0),
    ("le_5s", 5000.0),
    ("le_10s", 10000.0),
    ("le_inf", float("inf")),
)

# The primary key, in this order (also the lock order of concurrent upserts).
GROUP_COLUMNS: tuple[str, ...] = (
    "minute",
    "org",
    "org_id",
    "key_id",
    "model",
    "provider",
    "capability",
    "status",
    "currency",
)

INT_SUMS: tuple[str, ...] = (
    "requests",
    "errors",  # status >= 400
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "images",
    "pages",
    "characters",
    "unpriced_requests",  # calls admitted without a price (their cost 0.0 is not a price)
    "ttfb_count",  # calls that reported a time to first byte (the divisor of ttfb_ms_sum)
)
FLOAT_SUMS: tuple[str, ...] = ("audio_seconds", "cost", "latency_ms_sum", "ttfb_ms_sum")
BUCKET_COLUMNS: tuple[str, ...] = tuple(name for name, _ in LATENCY_BUCKETS)

# Every column that is added up on conflict, in table order.
SUM_COLUMNS: tuple[str, ...] = INT_SUMS + FLOAT_SUMS + BUCKET_COLUMNS

usage_rollups_minute = Table(
    "usage_rollups_minute",
    METADATA,
    Column("minute", DateTime(timezone=True), primary_key=True),  # start of the UTC minute
    Column("org", String(100), primary_key=True),
    Column("org_id", String(36), primary_key=True),
    Column("key_id", String(36), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("provider", String(100), primary_key=True),
    Column("capability", String(32), primary_key=True),
    Column("status", Integer, primary_key=True),
    Column("currency", String(3), primary_key=True),
    *(Column(name, BigInteger, nullable=False) for name in INT_SUMS),
    *(Column(name, Float, nullable=False) for name in FLOAT_SUMS),
    *(Column(name, BigInteger, nullable=False) for name in BUCKET_COLUMNS),
    # Upserts of this row so far: the time-series point of the row's totals is stamped
    # minute + revision ms, so the newest totals are the latest point (ADR 016).
    Column("revision", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_usage_rollups_minute_org_minute", "org", "minute"),
)

# (minute start as Unix seconds, org, org_id, key_id, model, provider, capability,
# status, currency): hashable and sortable in primary-key order.
RollupKey = tuple[int, str, str, str, str, str, str, int, str]


def ts_micros(ts: float) -> int:
    """The event time in whole microseconds: the one rounding every write path uses, so
    the ledger's `ts` and the rollup minute of an event can never disagree."""
    return round(ts * 1_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros_to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def minute_start(ts: float) -> int:
    """Unix seconds of the start of the UTC minute holding `ts` (after rounding to
    the microsecond, as the ledger stores it)."""
    return ts_micros(ts) // 60_000_000 * 60


@dataclass(slots=True)
class RollupRow:
    """The sums of one group: a batch's contribution, or (read back) the stored totals."""

    key: RollupKey
    sums: list[float]  # in SUM_COLUMNS order; the integer columns hold whole numbers
    revision: int = 0  # stored rows: how many upserts wrote the row (1 = the first)

    def as_row(self) -> dict[str, Any]:
        """The table row (minute as an aware UTC datetime, integer columns as int)."""
        row: dict[str, Any] = dict(zip(GROUP_COLUMNS, self.key, strict=True))
        row["minute"] = datetime.fromtimestamp(self.key[0], UTC)
        for index, name in enumerate(SUM_COLUMNS):
            value = self.sums[index]
            row[name] = value if name in FLOAT_SUMS else int(value)
        return row

    @classmethod
    def from_row(cls, row: Any) -> RollupRow:
        """From a mapping with every column (a RETURNING or SELECT row)."""
        minute = row["minute"]
        if isinstance(minute, datetime):
            if minute.tzinfo is None:  # SQLite returns naive UTC
                minute = minute.replace(tzinfo=UTC)
            minute_ts = int(minute.timestamp())
        else:
            minute_ts = int(minute)
        key: RollupKey = (
            minute_ts,
            row["org"],
            row["org_id"],
            row["key_id"],
            row["model"],
            row["provider"],
            row["capability"],
            int(row["status"]),
            row["currency"],
        )
        return cls(key, [row[name] for name in SUM_COLUMNS], int(row["revision"]))


def event_key(event: UsageEvent) -> RollupKey:
    return (
        minute_start(event.ts),
        event.org,
        event.org_id,
        event.key_id,
        event.model,
        event.provider,
        event.capability,
        event.status,
        event.currency,
    )


_N_INT = len(INT_SUMS)
_N_FLOAT = len(FLOAT_SUMS)
_FIRST_BUCKET = _N_INT + _N_FLOAT
_BOUNDS = tuple(bound for _, bound in LATENCY_BUCKETS)


def aggregate(events: Iterable[UsageEvent], *, touched: Iterable[UsageEvent] = ()) -> list[RollupRow]:
    """Sum `events` per group, sorted by key (primary-key order, so concurrent writers
    lock rows in the same order and cannot deadlock on each other).

    `touched` are further events (e.g. redelivered duplicates) whose groups get a row
    with zero sums when no event of `events` falls into them: upserting those adds
    nothing but reads back the stored totals."""
    groups: dict[RollupKey, list[float]] = {}
    width = len(SUM_COLUMNS)
    for event in events:
        key = event_key(event)
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = [0] * width
        sums[0] += 1
        if event.status >= 400:
            sums[1] += 1
        sums[2] += event.input_tokens
        sums[3] += event.output_tokens
        sums[4] += event.cached_tokens
        sums[5] += event.reasoning_tokens
        sums[6] += event.cache_write_tokens
        sums[7] += event.images
        sums[8] += event.pages
        sums[9] += event.characters
        if event.unpriced:
            sums[10] += 1
        latency = event.latency_ms
        ttfb = event.ttfb_ms
        if ttfb is not None:
            sums[11] += 1
            sums[_N_INT + 3] += ttfb
        sums[_N_INT] += event.audio_seconds
        sums[_N_INT + 1] += event.cost
        sums[_N_INT + 2] += latency
        # Cumulative: every bucket whose bound the latency does not exceed.
        for offset, bound in enumerate(_BOUNDS):
            if latency <= bound:
                for index in range(_FIRST_BUCKET + offset, width):
                    sums[index] += 1
                break
    for event in touched:
        key = event_key(event)
        if key not in groups:
            groups[key] = [0] * width
    return [RollupRow(key, groups[key]) for key in sorted(groups)]


# --- writes -------------------------------------------------------------------------

_PG_GROUP_TYPES = ("int8", "text", "text", "text", "text", "text", "text", "int4", "text")
_PG_UPSERT = (
    "INSERT INTO usage_rollups_minute ({columns}, revision) "
    "SELECT TIMESTAMPTZ 'epoch' + u.minute * INTERVAL '1 second', {rest}, 1 "
    "FROM unnest({arrays}) AS u({columns}) "
    "ON CONFLICT ({group}) DO UPDATE SET {updates} "
    ", revision = usage_rollups_minute.revision + 1 "
    "RETURNING extract(epoch FROM minute)::int8, {returning}, revision"
).format(
    columns=", ".join(GROUP_COLUMNS + SUM_COLUMNS),
    rest=", ".join(f"u.{name}" for name in GROUP_COLUMNS[1:] + SUM_COLUMNS),
    arrays=", ".join(
        [f"%b::{kind}[]" for kind in _PG_GROUP_TYPES]
        + ["%b::float8[]" if name in FLOAT_SUMS else "%b::int8[]" for name in SUM_COLUMNS]
    ),
    group=", ".join(GROUP_COLUMNS),
    updates=", ".join(f"{name} = usage_rollups_minute.{name} + EXCLUDED.{name}" for name in SUM_COLUMNS),
    returning=", ".join(GROUP_COLUMNS[1:] + SUM_COLUMNS),
)
_FLOAT_INDEXES = frozenset(SUM_COLUMNS.index(name) for name in FLOAT_SUMS)
_N_GROUP = len(GROUP_COLUMNS)
# SQLite allows 32766 bound parameters per statement.
_SQLITE_CHUNK = 32766 // (len(GROUP_COLUMNS) + len(SUM_COLUMNS))


def upsert_rollups(conn: Connection, rows: Sequence[RollupRow]) -> list[RollupRow]:
    """Add `rows` to the stored sums; returns the new stored totals of those groups.

    Runs in the caller's transaction and keeps the rows locked until it ends (the order
    of `rows`, as `aggregate` sorts them, is the lock order). A row of zero sums adds
    nothing but still returns (and locks) the stored totals."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        return _upsert_postgres(conn, rows)
    return _upsert_sqlite(conn, rows)


def _upsert_postgres(conn: Connection, rows: Sequence[RollupRow]) -> list[RollupRow]:
    params: list[list[Any]] = [[row.key[i] for row in rows] for i in range(_N_GROUP)]
    for index in range(len(SUM_COLUMNS)):
        if index in _FLOAT_INDEXES:
            params.append([float(row.sums[index]) for row in rows])
        else:
            params.append([int(row.sums[index]) for row in rows])
    stored = conn.exec_driver_sql(_PG_UPSERT, tuple(params)).all()
    return [
        RollupRow(tuple(record[:_N_GROUP]), list(record[_N_GROUP:-1]), int(record[-1]))  # type: ignore[arg-type]
        for record in stored
    ]


def _upsert_sqlite(conn: Connection, rows: Sequence[RollupRow]) -> list[RollupRow]:
    table = usage_rollups_minute
    result: list[RollupRow] = []
    values = [{**row.as_row(), "revision": 1} for row in rows]
    for start in range(0, len(values), _SQLITE_CHUNK):
        stmt = sqlite.insert(table).values(values[start : start + _SQLITE_CHUNK])
        upsert = stmt.on_conflict_do_update(
            index_elements=list(GROUP_COLUMNS),
            set_={
                **{name: table.c[name] + stmt.excluded[name] for name in SUM_COLUMNS},
                "revision": table.c.revision + 1,
            },
        ).returning(*table.c)
        result.extend(RollupRow.from_row(row) for row in conn.execute(upsert).mappings())
    return result
