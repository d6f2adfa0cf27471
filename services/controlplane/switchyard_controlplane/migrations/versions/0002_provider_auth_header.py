"""Providers: `auth_header`, how the upstream credential is sent.

Existing rows get "" (the api_format's own header), so upgrading changes nothing on
the wire.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table where it cannot ALTER in place.
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("auth_header", sa.String(length=100), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("auth_header")
