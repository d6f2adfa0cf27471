"""Control-plane unit fixtures: a migrated SQLite database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import Engine
from switchyard_common.db import make_engine
from switchyard_controlplane.app import create_app
from switchyard_controlplane.bootstrap import bootstrap_admin
from switchyard_controlplane.migrate import upgrade_database
from switchyard_controlplane.settings import ControlPlaneSettings
from switchyard_controlplane.snapshot_hub import SnapshotHub

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(sqlite_url: str) -> ControlPlaneSettings:
    return ControlPlaneSettings(
        database_url=sqlite_url,
        secret_key="unit-test-secret",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        snapshot_poll_interval=0.05,
    )


@pytest.fixture
def engine(settings: ControlPlaneSettings) -> Iterator[Engine]:
    upgrade_database(settings.database_url)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def hub(engine: Engine, settings: ControlPlaneSettings) -> AsyncIterator[SnapshotHub]:
    hub = SnapshotHub(engine, poll_interval=settings.snapshot_poll_interval)
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture
async def client(
    engine: Engine, settings: ControlPlaneSettings, hub: SnapshotHub
) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of the admin API (the bootstrap admin exists)."""
    bootstrap_admin(engine, settings)
    app = create_app(settings, engine, hub)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cp") as client:
        yield client


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The same client, logged in as the bootstrap admin."""
    client.headers.update(await login(client))
    return client
