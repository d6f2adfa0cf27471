"""The usage tables and their writes (usage-ingest) and reads (control-plane usage API).

`usage_events` holds one row per call, keyed by the event id, so a redelivered event
is a no-op: that is what makes ingest exactly-once on top of at-least-once delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    case,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from .db import METADATA
from .usage import UsageEvent

__all__ = [
    "GroupBy",
    "event_to_row",
    "insert_events",
    "list_events",
    "query_usage",
    "usage_events",
]

GroupBy = Literal["model", "key", "org"]

usage_events = Table(
    "usage_events",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("org", String(100), nullable=False),
    Column("org_id", String(36), nullable=False),
    Column("key_id", String(36), nullable=False),
    Column("capability", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("provider", String(100), nullable=False),
    Column("upstream_model", String(200), nullable=False),
    Column("status", Integer, nullable=False),
    Column("error_type", String(64)),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("tokens_estimated", Boolean, nullable=False, default=False),
    Column("cost", Float, nullable=False, default=0.0),
    Column("currency", String(3), nullable=False, default="USD"),
    Column("latency_ms", Float, nullable=False),
    Column("ttfb_ms", Float),
    Column("stream", Boolean, nullable=False, default=False),
    Column("attempts", JSON, nullable=False),
    Column("client_ip", String(64)),
    Column("trace_id", String(64)),
    Column("request_body", Text),
    Column("response_body", Text),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Index("ix_usage_events_ts", "ts"),
    Index("ix_usage_events_org_ts", "org", "ts"),
    Index("ix_usage_events_model_ts", "model", "ts"),
    Index("ix_usage_events_key_ts", "key_id", "ts"),
)


def _utc(value: datetime) -> datetime:
    """Timestamps are stored in UTC; naive inputs are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def event_to_row(event: UsageEvent, *, ingested_at: datetime | None = None) -> dict[str, Any]:
    """The `usage_events` row for one event."""
    row = event.as_dict()
    row["ts"] = datetime.fromtimestamp(event.ts, UTC)
    row["ingested_at"] = _utc(ingested_at or datetime.now(UTC))
    return row


def insert_events(conn: Connection, events: Sequence[UsageEvent]) -> int:
    """Insert events that are not stored yet; returns how many rows were inserted.

    Idempotent on the event id, which turns at-least-once delivery into exactly-once
    rows. Runs inside the caller's transaction, so a batch commits or fails as a whole.
    """
    now = datetime.now(UTC)
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        rows.setdefault(event.id, event_to_row(event, ingested_at=now))
    if not rows:
        return 0
    values = list(rows.values())
    dialect = conn.dialect.name
    stmt: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        stmt = postgresql.insert(usage_events).on_conflict_do_nothing(index_elements=["id"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(usage_events).on_conflict_do_nothing(index_elements=["id"])
    else:
        # No portable upsert: skip the ids already present. Safe for one writer per id,
        # which JetStream gives us (one consumer acks each message).
        existing = set(conn.scalars(select(usage_events.c.id).where(usage_events.c.id.in_(list(rows)))).all())
        values = [row for row in values if row["id"] not in existing]
        if not values:
            return 0
        conn.execute(insert(usage_events), values)
        return len(values)
    # RETURNING lists only the rows actually inserted; rowcount is unreliable for
    # executemany with ON CONFLICT on some drivers.
    inserted = conn.execute(stmt.returning(usage_events.c.id), values).all()
    return len(inserted)


_COUNT_FIELDS = ("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
_GROUP_COLUMNS = {
    "model": usage_events.c.model,
    "key": usage_events.c.key_id,
    "org": usage_events.c.org,
}


def query_usage(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    group_by: GroupBy,
    org: str | None = None,
) -> list[dict[str, Any]]:
    """Totals per model, key or organization for `start <= ts < end`.

    Each dict has the group column (`model`, `key_id` or `org`), `requests`, `errors`
    (status >= 400), token sums, `cost` and `avg_latency_ms`; ordered by the group value.
    `org` restricts the rows to one organization.
    """
    if group_by not in _GROUP_COLUMNS:
        raise ValueError(f"group_by must be one of {sorted(_GROUP_COLUMNS)}, not {group_by!r}")
    group_col = _GROUP_COLUMNS[group_by]
    t = usage_events.c
    stmt = (
        select(
            group_col,
            func.count().label("requests"),
            func.coalesce(func.sum(case((t.status >= 400, 1), else_=0)), 0).label("errors"),
            func.coalesce(func.sum(t.input_tokens), 0).label("input_tokens"),
            func.coalesce(func.sum(t.output_tokens), 0).label("output_tokens"),
            func.coalesce(func.sum(t.cached_tokens), 0).label("cached_tokens"),
            func.coalesce(func.sum(t.reasoning_tokens), 0).label("reasoning_tokens"),
            func.coalesce(func.sum(t.cost), 0.0).label("cost"),
            func.avg(t.latency_ms).label("avg_latency_ms"),
        )
        .where(t.ts >= _utc(start), t.ts < _utc(end))
        .group_by(group_col)
        .order_by(group_col)
    )
    if org is not None:
        stmt = stmt.where(t.org == org)
    result = []
    for row in conn.execute(stmt).mappings():
        item = dict(row)
        for name in _COUNT_FIELDS:
            item[name] = int(item[name])
        item["cost"] = float(item["cost"])
        item["avg_latency_ms"] = float(item["avg_latency_ms"] or 0.0)
        result.append(item)
    return result


def list_events(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    limit: int = 100,
    org: str | None = None,
) -> list[dict[str, Any]]:
    """Raw rows with `start <= ts < end`, oldest first (ties by id), at most `limit`.
    Timestamps come back timezone-aware (UTC) on every backend."""
    t = usage_events.c
    stmt = select(usage_events).where(t.ts >= _utc(start), t.ts < _utc(end)).order_by(t.ts, t.id).limit(limit)
    if org is not None:
        stmt = stmt.where(t.org == org)
    rows = []
    for row in conn.execute(stmt).mappings():
        item = dict(row)
        for name in ("ts", "ingested_at"):
            if isinstance(item[name], datetime):
                item[name] = _utc(item[name])
        rows.append(item)
    return rows
