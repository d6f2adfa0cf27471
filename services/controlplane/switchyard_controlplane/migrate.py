"""Programmatic Alembic: `upgrade_database(url)` brings any SQLite or Postgres database
to the head revision. Safe to call from several replicas starting at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from switchyard_common.db import make_engine

__all__ = ["alembic_config", "current_revisions", "head_revisions", "upgrade_database"]

_SCRIPT_LOCATION = str(Path(__file__).resolve().parent / "migrations")

# Arbitrary constant: the Postgres advisory lock that serialises concurrent upgrades.
_MIGRATION_LOCK_ID = 0x5357_4D49  # "SWMI"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> tuple[str, ...]:
    """The newest revision of every branch (features may add independent branches from a
    common base; a merge revision joins them again)."""
    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


def current_revisions(url: str) -> tuple[str, ...]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    finally:
        engine.dispose()


def upgrade_database(url: str) -> None:
    """Upgrade the database at `url` to head, in one transaction where the database allows."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two replicas migrating at once would race on CREATE TABLE; the second one
                # waits here and then finds the schema already at head.
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            command.upgrade(alembic_config(conn), "heads")
    finally:
        engine.dispose()
