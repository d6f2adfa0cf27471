"""The control-plane fixtures (migrated SQLite, logged-in admin client) for audit tests."""

from tests.unit.controlplane.conftest import admin, client, engine, hub, settings  # noqa: F401
