"""Usage at scale: the new event fields in the ledger, per-minute rollups, dead letters.

Existing ledger rows get the neutral value of each new field (0, false, "", []). The
rollup table is filled from the existing ledger, so rollup totals equal ledger totals
from the first minute after the upgrade.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

_INT_SUMS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "images",
    "pages",
    "characters",
    "unpriced_requests",
    "ttfb_count",
)
_FLOAT_SUMS = ("audio_seconds", "cost", "latency_ms_sum", "ttfb_ms_sum")
_BUCKETS = (
    ("le_100ms", 100),
    ("le_250ms", 250),
    ("le_500ms", 500),
    ("le_1s", 1000),
    ("le_2500ms", 2500),
    ("le_5s", 5000),
    ("le_10s", 10000),
)
_GROUP = "org, org_id, key_id, model, provider, capability, status, currency"


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("cache_write_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("images", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("pages", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("audio_seconds", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("characters", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("unpriced", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("key_name", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("client_disconnect", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("refused_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("shadow_refusals", sa.JSON(), nullable=False, server_default="[]"))
    # The server defaults only filled the existing rows; the application always writes
    # every column (METADATA has no server defaults, and the schema test compares them).
    with op.batch_alter_table("usage_events") as batch:
        for name in (
            "cache_write_tokens",
            "images",
            "pages",
            "audio_seconds",
            "characters",
            "unpriced",
            "key_name",
            "client_disconnect",
            "shadow_refusals",
        ):
            batch.alter_column(name, server_default=None)

    op.create_table(
        "usage_rollups_minute",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org", sa.String(length=100), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("capability", sa.String(length=32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _INT_SUMS),
        *(sa.Column(name, sa.Float(), nullable=False) for name in _FLOAT_SUMS),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name, _ in _BUCKETS),
        sa.Column("le_inf", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint(
            "minute",
            "org",
            "org_id",
            "key_id",
            "model",
            "provider",
            "capability",
            "status",
            "currency",
            name=op.f("pk_usage_rollups_minute"),
        ),
    )
    op.create_index("ix_usage_rollups_minute_org_minute", "usage_rollups_minute", ["org", "minute"])

    op.create_table(
        "usage_dead_letters",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("msg_id", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_dead_letters")),
    )
    op.create_index("ix_usage_dead_letters_created_at", "usage_dead_letters", ["created_at"])
    _backfill_rollups()


def _backfill_rollups() -> None:
    """One rollup row per minute and group of the rows already in the ledger."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        minute = "date_trunc('minute', ts)"
    else:
        # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text (UTC).
        minute = "strftime('%Y-%m-%d %H:%M:00.000000', ts)"
    buckets = ", ".join(f"SUM(CASE WHEN latency_ms <= {bound} THEN 1 ELSE 0 END)" for _, bound in _BUCKETS)
    columns = ", ".join(
        ("minute", _GROUP, *_INT_SUMS, *_FLOAT_SUMS, *(name for name, _ in _BUCKETS), "le_inf")
    )
    op.execute(
        f"INSERT INTO usage_rollups_minute ({columns}) "
        f"SELECT {minute}, {_GROUP}, COUNT(*), "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), "
        "SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens), "
        "SUM(cache_write_tokens), SUM(images), SUM(pages), SUM(characters), "
        "SUM(CASE WHEN unpriced THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN ttfb_ms IS NULL THEN 0 ELSE 1 END), "
        "SUM(audio_seconds), SUM(cost), SUM(latency_ms), COALESCE(SUM(ttfb_ms), 0), "
        f"{buckets}, COUNT(*) "
        f"FROM usage_events GROUP BY {minute}, {_GROUP}"
    )


def downgrade() -> None:
    op.drop_index("ix_usage_dead_letters_created_at", table_name="usage_dead_letters")
    op.drop_table("usage_dead_letters")
    op.drop_index("ix_usage_rollups_minute_org_minute", table_name="usage_rollups_minute")
    op.drop_table("usage_rollups_minute")
    with op.batch_alter_table("usage_events") as batch:
        for name in (
            "shadow_refusals",
            "refused_by",
            "client_disconnect",
            "key_name",
            "unpriced",
            "characters",
            "audio_seconds",
            "pages",
            "images",
            "cache_write_tokens",
        ):
            batch.drop_column(name)
