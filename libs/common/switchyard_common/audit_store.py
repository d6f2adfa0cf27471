"""The audit log: one row per audited call, next to its ledger row in `usage_events`.

Metadata (key, model, status, failover chain, client IP, trace id) is read from the
ledger; this table adds what only audit keeps: the redacted request headers and, for
orgs with `audit: full`, the request and response bodies, zlib-compressed. Rows are
purged per organization after its retention period; the ledger (billing) stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from .audit import compress, decompress
from .audit_streams import reassemble_stream
from .db import METADATA
from .usage import UsageEvent
from .usage_rollups import micros_to_datetime, ts_micros
from .usage_store import usage_events

__all__ = ["AuditFilter", "audit_log", "get_audit", "insert_audit", "list_audit", "purge_audit"]

audit_log = Table(
    "audit_log",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("org_id", String(36), nullable=False),
    Column("level", String(16), nullable=False),
    Column("request_headers", JSON),
    Column("request_body", LargeBinary),
    Column("response_body", LargeBinary),
    Column("request_size", Integer, nullable=False, default=0),
    Column("response_size", Integer, nullable=False, default=0),
    Column("request_truncated", Boolean, nullable=False, default=False),
    Column("response_truncated", Boolean, nullable=False, default=False),
    # The response was a stream, stored reassembled into one JSON document.
    Column("response_reassembled", Boolean, nullable=False, default=False),
    Index("ix_audit_log_org_id_ts", "org_id", "ts"),
)


def audit_row(event: UsageEvent) -> dict[str, Any] | None:
    """The audit row for `event`, or None when its call is not audited."""
    if event.audit_level not in ("metadata", "full"):
        return None
    response = event.response_body
    reassembled = event.response_reassembled
    if response is not None and event.stream and not reassembled:
        whole = reassemble_stream(response)
        if whole is not None:
            response, reassembled = whole, True
    return {
        "event_id": event.id,
        # The ledger's rounding, so that the two rows of a call carry the same instant.
        "ts": micros_to_datetime(ts_micros(event.ts)),
        "org_id": event.org_id,
        "level": event.audit_level,
        "request_headers": event.request_headers,
        "request_body": compress(event.request_body),
        "response_body": compress(response),
        "request_size": len(event.request_body or ""),
        "response_size": len(event.response_body or ""),
        "request_truncated": event.request_truncated,
        "response_truncated": event.response_truncated,
        "response_reassembled": reassembled,
    }


def insert_audit(conn: Connection, events: Sequence[UsageEvent]) -> int:
    """Audit rows for the audited events among `events`; idempotent on the event id."""
    rows = [row for row in map(audit_row, events) if row is not None]
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(audit_log).on_conflict_do_nothing(index_elements=["event_id"])
    else:
        stmt = sqlite.insert(audit_log).on_conflict_do_nothing(index_elements=["event_id"])
    conn.execute(stmt, rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    start: datetime
    end: datetime
    org_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    status: int | None = None
    # Only calls with this status class or worse, e.g. 400 = every error.
    min_status: int | None = None


_METADATA_COLUMNS = (
    usage_events.c.id,
    # The audit row's time: it is what listing filters, orders and pages on.
    audit_log.c.ts,
    usage_events.c.org,
    usage_events.c.org_id,
    usage_events.c.key_id,
    usage_events.c.capability,
    usage_events.c.model,
    usage_events.c.provider,
    usage_events.c.upstream_model,
    usage_events.c.status,
    usage_events.c.error_type,
    usage_events.c.input_tokens,
    usage_events.c.output_tokens,
    usage_events.c.cost,
    usage_events.c.currency,
    usage_events.c.latency_ms,
    usage_events.c.ttfb_ms,
    usage_events.c.stream,
    usage_events.c.attempts,
    usage_events.c.client_ip,
    usage_events.c.trace_id,
    audit_log.c.level,
    audit_log.c.request_headers,
    audit_log.c.request_size,
    audit_log.c.response_size,
    audit_log.c.request_truncated,
    audit_log.c.response_truncated,
)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def list_audit(
    conn: Connection, where: AuditFilter, *, limit: int = 100, after: tuple[datetime, str] | None = None
) -> list[dict[str, Any]]:
    """Audited calls matching `where`, newest first, without bodies. `after` is the
    (ts, id) of the last row of the previous page."""
    t = usage_events.c
    stmt = (
        select(*_METADATA_COLUMNS)
        .select_from(audit_log.join(usage_events, usage_events.c.id == audit_log.c.event_id))
        .where(audit_log.c.ts >= where.start, audit_log.c.ts < where.end)
        .order_by(audit_log.c.ts.desc(), audit_log.c.event_id.desc())
        .limit(limit)
    )
    if where.org_id is not None:
        stmt = stmt.where(audit_log.c.org_id == where.org_id)
    if where.key_id is not None:
        stmt = stmt.where(t.key_id == where.key_id)
    if where.model is not None:
        stmt = stmt.where(t.model == where.model)
    if where.status is not None:
        stmt = stmt.where(t.status == where.status)
    if where.min_status is not None:
        stmt = stmt.where(t.status >= where.min_status)
    if after is not None:
        ts, event_id = after
        stmt = stmt.where(
            (audit_log.c.ts < ts) | ((audit_log.c.ts == ts) & (audit_log.c.event_id < event_id))
        )
    return [{k: _aware(v) for k, v in row.items()} for row in conn.execute(stmt).mappings()]


def get_audit(conn: Connection, event_id: str) -> dict[str, Any] | None:
    """One audited call with its bodies (decompressed), or None."""
    stmt = (
        select(
            *_METADATA_COLUMNS,
            audit_log.c.request_body,
            audit_log.c.response_body,
            audit_log.c.response_reassembled,
        )
        .select_from(audit_log.join(usage_events, usage_events.c.id == audit_log.c.event_id))
        .where(audit_log.c.event_id == event_id)
    )
    row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    item = {k: _aware(v) for k, v in row.items()}
    item["request_body"] = decompress(item["request_body"])
    item["response_body"] = decompress(item["response_body"])
    return item


def purge_audit(conn: Connection, org_id: str, older_than: datetime) -> int:
    """Delete an organization's audit rows from before `older_than`; returns how many."""
    result = conn.execute(delete(audit_log).where(audit_log.c.org_id == org_id, audit_log.c.ts < older_than))
    return int(result.rowcount or 0)
