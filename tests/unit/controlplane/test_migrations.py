"""The Alembic head creates exactly the schema METADATA describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from switchyard_common import audit_store, usage_store  # noqa: F401  (registers usage tables)
from switchyard_common.db import METADATA, make_engine
from switchyard_controlplane.db import models  # noqa: F401
from switchyard_controlplane.migrate import current_revisions, head_revisions, upgrade_database


def test_head_matches_metadata_on_sqlite(sqlite_url: str) -> None:
    upgrade_database(sqlite_url)
    upgrade_database(sqlite_url)  # a second run is a no-op
    assert current_revisions(sqlite_url) == head_revisions() == ("0007",)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, METADATA) == []
    finally:
        engine.dispose()


def test_migration_seeds_config_state(sqlite_url: str) -> None:
    from switchyard_controlplane.repo import read_config_version

    upgrade_database(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            state = read_config_version(conn)
            assert state.version == 0 and state.snapshot_id
    finally:
        engine.dispose()


def test_0002_gives_existing_providers_the_formats_default_auth(sqlite_url: str) -> None:
    from alembic import command
    from sqlalchemy import text
    from switchyard_controlplane.migrate import alembic_config

    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
            conn.execute(
                text(
                    "INSERT INTO providers (id, slug, api_format, base_url, api_path, headers,"
                    " timeout_seconds, connect_timeout_seconds, models, created_at, updated_at)"
                    " VALUES ('p1', 'up', 'openai', 'https://up.example', '', '{}', 600, 10, '[]',"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        upgrade_database(sqlite_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT auth_header FROM providers")).scalar_one() == ""
    finally:
        engine.dispose()
