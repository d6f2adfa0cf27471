"""docs/operations.md covers what issue 6 asks for, and what it names exists: every table
the migrations create is in the backup section, the commands are real CLI commands,
the admin API paths are real routes, the settings are documented. (Its alert table is
checked against the chart's PrometheusRule in test_helm_options.py.)"""

from __future__ import annotations

import argparse
import re

from .tooling import ROOT

OPERATIONS = ROOT / "docs" / "operations.md"
MIGRATIONS = ROOT / "services" / "controlplane" / "switchyard_controlplane" / "migrations" / "versions"


def _sections() -> dict[str, str]:
    parts = re.split(r"^## (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _created_tables() -> set[str]:
    tables: set[str] = set()
    for path in MIGRATIONS.glob("*.py"):
        tables.update(re.findall(r"op\.create_table\(\s*\"([a-z_]+)\"", path.read_text()))
        tables -= set(re.findall(r"op\.drop_table\(\s*\"([a-z_]+)\"\s*\)\s*$", _upgrade(path.read_text())))
    return tables | {"alembic_version"}


def _upgrade(source: str) -> str:
    """The upgrade() body only (downgrade() drops everything it created)."""
    return source.split("def downgrade", 1)[0]


def test_every_topic_of_the_issue_has_a_section() -> None:
    sections = _sections()
    for title in (
        "Sizing",
        "Scaling each tier",
        "Backup and restore of Postgres",
        "Upgrades and migrations",
        "Rotating SWITCHYARD_SECRET_KEY",
        "Rotating admin credentials and tokens",
        "What to alert on",
    ):
        assert title in sections, f"docs/operations.md has no section {title!r}"
    scaling = sections["Scaling each tier"]
    for tier in ("Data plane", "Control plane", "Usage ingest"):
        assert f"**{tier}**" in scaling, tier
    sizing = sections["Sizing"]
    for tier in ("data plane", "control plane", "usage ingest", "Postgres", "Redis", "NATS JetStream"):
        assert f"| {tier} |" in sizing, tier
    backup = sections["Backup and restore of Postgres"]
    assert "pg_dump" in backup and "pg_restore" in backup and "SWITCHYARD_SECRET_KEY" in backup
    upgrade = sections["Upgrades and migrations"]
    assert "pre-upgrade" in upgrade and "switchyard migrate" in upgrade


def test_backup_section_names_every_table_the_migrations_create() -> None:
    backup = _sections()["Backup and restore of Postgres"]
    listed = set(re.findall(r"`([a-z_]+)`", backup.split("Back up with", 1)[0]))
    tables = _created_tables()
    assert {"organizations", "usage_events", "audit_log"} <= tables  # the parsing works
    assert not tables - listed, f"tables missing from the backup table: {sorted(tables - listed)}"
    assert not listed - tables, (
        f"the backup table names tables no migration creates: {sorted(listed - tables)}"
    )
    # The configuration-only dump takes every configuration table.
    config_dump = set(re.findall(r"-t ([a-z_]+)", backup))
    first_row = backup.split("\n| `", 2)[1]
    config_tables = set(re.findall(r"([a-z_]+)`", first_row.split("|")[0]))
    assert config_tables and config_tables <= config_dump, sorted(config_tables - config_dump)


def _cli_commands() -> set[str]:
    from switchyard_cli.main import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    return set(sub.choices)


def test_commands_routes_and_settings_it_names_exist(sqlite_url: str) -> None:
    text = OPERATIONS.read_text()
    commands = set(re.findall(r"\bswitchyard ([a-z][a-z-]+)", text))
    assert {"migrate", "rotate-secret-key", "apply"} <= commands
    assert not commands - _cli_commands(), sorted(commands - _cli_commands())

    from switchyard_common.db import make_engine
    from switchyard_controlplane.app import create_app
    from switchyard_controlplane.settings import ControlPlaneSettings
    from switchyard_controlplane.snapshot_hub import SnapshotHub

    engine = make_engine(sqlite_url)
    try:
        app = create_app(
            ControlPlaneSettings(database_url=sqlite_url, secret_key="docs-test"), engine, SnapshotHub(engine)
        )
        routes = set(app.openapi()["paths"])
    finally:
        engine.dispose()
    for path in set(re.findall(r"(/api/v1/[a-z/-]+[a-z])", text)):
        assert path in routes, f"{path} is not an admin API route"

    settings_doc = (ROOT / "docs" / "settings.md").read_text()
    undocumented = sorted(
        v for v in set(re.findall(r"SWITCHYARD_[A-Z_]+[A-Z]", text)) if v not in settings_doc
    )
    assert not undocumented, f"settings missing from docs/settings.md: {undocumented}"
