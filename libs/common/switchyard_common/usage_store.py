"""The usage tables and their writes (usage-ingest) and reads (control-plane usage API).

`usage_events` holds one row per call, keyed by the event id, so a redelivered event
is a no-op: that is what makes ingest exactly-once on top of at-least-once delivery.
"""

from __future__ import annotations

import dataclasses
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
from sqlalchemy.dialects import sqlite

from .db import METADATA, as_utc
from .usage import UsageEvent

# The other usage tables live in METADATA whenever the ledger does (one schema).
from .usage_dead_letters import usage_dead_letters
from .usage_rollups import micros_to_datetime, ts_micros, usage_rollups_minute

__all__ = [
    "PLAIN_FIELDS",
    "USAGE_TABLES",
    "GroupBy",
    "event_to_row",
    "insert_events",
    "insert_new_events",
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
    Column("cache_write_tokens", Integer, nullable=False, default=0),
    Column("tokens_estimated", Boolean, nullable=False, default=False),
    Column("images", Integer, nullable=False, default=0),
    Column("pages", Integer, nullable=False, default=0),
    Column("audio_seconds", Float, nullable=False, default=0.0),
    Column("characters", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("currency", String(3), nullable=False, default="USD"),
    Column("unpriced", Boolean, nullable=False, default=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttfb_ms", Float),
    Column("stream", Boolean, nullable=False, default=False),
    Column("attempts", JSON, nullable=False),
    Column("client_ip", String(64)),
    Column("trace_id", String(64)),
    Column("key_name", String(200), nullable=False, default=""),
    Column("client_disconnect", Boolean, nullable=False, default=False),
    Column("refused_by", String(64)),
    Column("shadow_refusals", JSON, nullable=False, default=list),
    Column("request_body", Text),
    Column("response_body", Text),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Index("ix_usage_events_ts", "ts"),
    Index("ix_usage_events_org_ts", "org", "ts"),
    Index("ix_usage_events_model_ts", "model", "ts"),
    Index("ix_usage_events_key_ts", "key_id", "ts"),
)


# What the ingest writes: tests that build a schema without migrations create these.
USAGE_TABLES = [usage_events, usage_rollups_minute, usage_dead_letters]


# Event fields stored as they are (everything but ts, ingested_at, the JSON columns
# and the bodies: those are audit data, kept compressed in audit_log and purged per the
# org's retention; the ledger's old body columns stay empty).
PLAIN_FIELDS: tuple[str, ...] = tuple(
    c.name
    for c in usage_events.columns
    if c.name not in ("ts", "ingested_at", "attempts", "shadow_refusals", "request_body", "response_body")
)


def event_to_row(event: UsageEvent, *, ingested_at: datetime | None = None) -> dict[str, Any]:
    """The `usage_events` row for one event (fields the ledger does not keep, such as
    audit headers and bodies, are left out)."""
    row = {name: getattr(event, name) for name in PLAIN_FIELDS}
    row["ts"] = micros_to_datetime(ts_micros(event.ts))
    row["attempts"] = [dataclasses.asdict(a) for a in event.attempts]
    row["shadow_refusals"] = list(event.shadow_refusals)
    row["ingested_at"] = as_utc(ingested_at or datetime.now(UTC))
    return row


def insert_new_events(conn: Connection, events: Sequence[UsageEvent]) -> list[UsageEvent]:
    """Insert the events that are not stored yet; returns those (first occurrence of
    each id, in batch order).

    Idempotent on the event id, which turns at-least-once delivery into exactly-once
    rows. Runs inside the caller's transaction, so a batch commits or fails as a whole.
    On Postgres the batch is COPYed into a temporary table and inserted from there.
    """
    unique: dict[str, UsageEvent] = {}
    for event in events:
        unique.setdefault(event.id, event)
    if not unique:
        return []
    batch = list(unique.values())
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from .usage_ledger_pg import insert_events_postgres  # imports this module

        inserted_ids = insert_events_postgres(conn, batch)
        return [event for event in batch if event.id in inserted_ids]
    now = datetime.now(UTC)
    values = [event_to_row(event, ingested_at=now) for event in batch]
    if dialect == "sqlite":
        stmt = sqlite.insert(usage_events).on_conflict_do_nothing(index_elements=["id"])
        # RETURNING lists only the rows actually inserted; rowcount is unreliable for
        # executemany with ON CONFLICT on some drivers.
        inserted_ids = set(conn.scalars(stmt.returning(usage_events.c.id), values).all())
        return [event for event in batch if event.id in inserted_ids]
    # No portable upsert: skip the ids already present. Safe for one writer per id,
    # which JetStream gives us (one consumer acks each message).
    existing = set(conn.scalars(select(usage_events.c.id).where(usage_events.c.id.in_(list(unique)))).all())
    fresh = [(event, row) for event, row in zip(batch, values, strict=True) if event.id not in existing]
    if fresh:
        conn.execute(insert(usage_events), [row for _, row in fresh])
    return [event for event, _ in fresh]


def insert_events(conn: Connection, events: Sequence[UsageEvent]) -> int:
    """Insert events that are not stored yet; returns how many rows were inserted."""
    return len(insert_new_events(conn, events))


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
        .where(t.ts >= as_utc(start), t.ts < as_utc(end))
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
    stmt = (
        select(usage_events)
        .where(t.ts >= as_utc(start), t.ts < as_utc(end))
        .order_by(t.ts, t.id)
        .limit(limit)
    )
    if org is not None:
        stmt = stmt.where(t.org == org)
    rows = []
    for row in conn.execute(stmt).mappings():
        item = dict(row)
        for name in ("ts", "ingested_at"):
            if isinstance(item[name], datetime):
                item[name] = as_utc(item[name])
        rows.append(item)
    return rows
