"""The usage tables and their writes (usage-ingest) and reads (control-plane usage API).

`usage_events` holds one row per call, keyed by the event id, so a redelivered event
is a no-op: that is what makes ingest exactly-once on top of at-least-once delivery.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from .db import METADATA

__all__ = ["usage_events"]

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
