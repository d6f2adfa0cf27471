"""Join the branches built in parallel from 0002: governance (0003), usage rollups and
dead letters (0004), audit log (0006). No schema change of its own.

Revision ID: 0007
Revises: 0003, 0004, 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0007"
down_revision = ("0003", "0004", "0006")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
