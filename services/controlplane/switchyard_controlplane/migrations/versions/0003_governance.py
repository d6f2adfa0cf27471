"""Governance: provider enabled flag and breaker epoch; model routing, limits, shadow rules and output-token
assumption; target quotas; key enabled flag, IP allow-list and shadow rules; prices keyed
by name (public model or `<provider>/<upstream>` target) with an effective-from schedule.

Existing rows keep their behaviour: providers and keys stay enabled, nothing is limited,
every existing price applies "always" (effective_from_ms = 0), and key limits written with
the single `budget` shorthand are stored in the `budgets` list the code now reads.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# Plain-string server defaults: SQLite then adds the columns in place (an expression
# default would make batch mode rebuild the table, and dropping `providers` to rebuild it
# fails while model targets reference it with foreign keys on). '1' reads as true on
# both databases.
def _json(name: str, default: str) -> sa.Column:
    return sa.Column(name, sa.JSON(), nullable=False, server_default=default)


def _flag(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default="1")


def _fold_key_budgets() -> None:
    keys = sa.table("api_keys", sa.column("id", sa.String()), sa.column("limits", sa.JSON()))
    conn = op.get_bind()
    for key_id, limits in conn.execute(sa.select(keys.c.id, keys.c.limits)).all():
        if not isinstance(limits, dict) or "budget" not in limits:
            continue
        updated: dict[str, Any] = {k: v for k, v in limits.items() if k != "budget"}
        budget = limits["budget"]
        if isinstance(budget, dict):
            budget = {"currency": "USD", "period": "month", **budget}
            updated["budgets"] = [budget, *(limits.get("budgets") or [])]
        conn.execute(sa.update(keys).where(keys.c.id == key_id).values(limits=updated))


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(_flag("enabled"))
        batch.add_column(sa.Column("breaker_epoch", sa.String(length=16), nullable=False, server_default=""))
    providers = sa.table("providers", sa.column("id", sa.String()), sa.column("breaker_epoch", sa.String()))
    conn = op.get_bind()
    for (provider_id,) in conn.execute(sa.select(providers.c.id)).all():
        conn.execute(
            sa.update(providers)
            .where(providers.c.id == provider_id)
            .values(breaker_epoch=secrets.token_hex(6))
        )
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("routing", sa.String(length=32), nullable=True))
        batch.add_column(_json("limits", "{}"))
        batch.add_column(_json("shadow", "[]"))
        batch.add_column(sa.Column("max_output_tokens", sa.Integer(), nullable=False, server_default="4096"))
    with op.batch_alter_table("model_targets") as batch:
        batch.add_column(_json("limits", "{}"))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(_flag("enabled"))
        batch.add_column(_json("allowed_ips", "[]"))
        batch.add_column(_json("shadow", "[]"))
    _fold_key_budgets()

    # Prices: the model's name replaces the foreign key (target prices have no model row),
    # and the unique key gains the effective-from date.
    with op.batch_alter_table("prices") as batch:
        batch.add_column(sa.Column("model", sa.String(length=400), nullable=True))
        batch.add_column(sa.Column("effective_from_ms", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute("UPDATE prices SET model = (SELECT models.name FROM models WHERE models.id = prices.model_id)")
    with op.batch_alter_table("prices") as batch:
        batch.alter_column("model", existing_type=sa.String(length=400), nullable=False)
        batch.drop_constraint("uq_prices_model_id_unit", type_="unique")
        batch.drop_constraint("fk_prices_model_id_models", type_="foreignkey")
        batch.drop_column("model_id")
        batch.create_unique_constraint(
            "uq_prices_model_unit_effective_from", ["model", "unit", "effective_from_ms"]
        )


def downgrade() -> None:
    # Only undated prices of public models fit the old table; the rest of the schedule
    # and every target price are dropped.
    op.execute(
        "DELETE FROM prices WHERE effective_from_ms <> 0 OR model NOT IN (SELECT models.name FROM models)"
    )
    with op.batch_alter_table("prices") as batch:
        batch.add_column(sa.Column("model_id", sa.String(length=36), nullable=True))
    op.execute("UPDATE prices SET model_id = (SELECT models.id FROM models WHERE models.name = prices.model)")
    with op.batch_alter_table("prices") as batch:
        batch.alter_column("model_id", existing_type=sa.String(length=36), nullable=False)
        batch.drop_constraint("uq_prices_model_unit_effective_from", type_="unique")
        batch.drop_column("effective_from_ms")
        batch.drop_column("model")
        batch.create_foreign_key(
            "fk_prices_model_id_models", "models", ["model_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_unique_constraint("uq_prices_model_id_unit", ["model_id", "unit"])
    # Plain DROP COLUMN (SQLite >= 3.35 has it): a batch rebuild of `models` or `providers`
    # would drop the table, and with foreign keys on that cascades to targets and prices.
    for table, columns in (
        ("api_keys", ("shadow", "allowed_ips", "enabled")),
        ("model_targets", ("limits",)),
        ("models", ("max_output_tokens", "shadow", "limits", "routing")),
        ("providers", ("breaker_epoch", "enabled")),
    ):
        for column in columns:
            op.drop_column(table, column)
