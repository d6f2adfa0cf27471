"""Control plane on real Postgres: REST CRUD, apply/export round trip, usage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from switchyard_common.db import make_engine
from switchyard_common.usage import UsageEvent
from switchyard_common.usage_rollups import aggregate, upsert_rollups
from switchyard_common.usage_store import insert_new_events
from switchyard_controlplane.server import serve
from switchyard_controlplane.settings import ControlPlaneSettings

from ..conftest import free_port

pytestmark = pytest.mark.integration

ADMIN = {"email": "ops@example.com", "password": "integration-password"}
DOC = {
    "organizations": [{"name": "acme", "policy": {"routing": "priority"}}],
    "providers": [
        {
            "slug": "deepseek",
            "api_format": "openai",
            "base_url": "https://api.deepseek.com",
            "api_key": "sk-ds",
        },
        {"slug": "vllm", "api_format": "openai", "base_url": "http://vllm:8000", "api_key_env": "VLLM_KEY"},
    ],
    "models": [
        {
            "name": "chat-default",
            "targets": [
                {"provider": "deepseek", "model": "deepseek-chat"},
                {"provider": "vllm", "model": "q", "priority": 1},
            ],
        }
    ],
    "prices": [{"model": "chat-default", "unit": "input_token", "per_million": 0.27}],
    "keys": [
        {"name": "billing", "org": "acme", "value": "gk_" + "b" * 40, "limits": {"rpm": 600}},
        {"name": "generated", "org": "acme"},
    ],
}


def replica_settings(pg_url: str) -> ControlPlaneSettings:
    return ControlPlaneSettings(
        database_url=pg_url,
        secret_key="integration-secret",
        admin_email=ADMIN["email"],
        admin_password=ADMIN["password"],
        controlplane_port=free_port(),
        grpc_port=free_port(),
    )


async def start_replica(settings: ControlPlaneSettings) -> asyncio.Task[None]:
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    waiter.cancel()
    assert ready.is_set(), "control plane did not become ready in 30 s"
    return task


async def stop_replica(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task], timeout=15)
    assert task.done()


async def admin_client(settings: ControlPlaneSettings) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.controlplane_port}", timeout=10)
    login = await client.post("/api/v1/auth/login", json=ADMIN)
    assert login.status_code == 200, login.text
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return client


@pytest.fixture
async def api(pg_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, ControlPlaneSettings]]:
    settings = replica_settings(pg_url)
    task = await start_replica(settings)
    client = await admin_client(settings)
    try:
        yield client, settings
    finally:
        await client.aclose()
        await stop_replica(task)


async def test_crud_and_errors_on_postgres(api: tuple[httpx.AsyncClient, ControlPlaneSettings]) -> None:
    client, _ = api
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.post("/api/v1/organizations", json={"name": "acme"})).status_code == 201
    assert (await client.post("/api/v1/organizations", json={"name": "acme"})).status_code == 409
    provider = {"slug": "p", "api_format": "openai", "base_url": "https://p.example", "api_key": "sk-p"}
    created = await client.post("/api/v1/providers", json=provider)
    assert created.status_code == 201 and created.json()["has_api_key"] and "sk-p" not in created.text
    model = {"name": "m", "targets": [{"provider": "p", "model": "up-m"}]}
    assert (await client.post("/api/v1/models", json=model)).status_code == 201
    key = await client.post("/api/v1/keys", json={"name": "k", "org": "acme", "models": ["m"]})
    assert key.status_code == 201 and key.json()["key"].startswith("gk_")
    listed = (await client.get("/api/v1/keys")).json()["data"]
    assert [k["name"] for k in listed] == ["k"] and "key" not in listed[0]
    revoked = await client.post(f"/api/v1/keys/{listed[0]['id']}/revoke")
    assert revoked.json()["revoked"] is True
    assert (await client.delete("/api/v1/providers/p")).status_code == 409
    assert (await client.delete("/api/v1/models/m")).status_code == 204
    assert (await client.delete("/api/v1/providers/p")).status_code == 204
    assert (await client.get("/api/v1/providers/p")).status_code == 404
    assert (
        await client.get("/api/v1/organizations", headers={"Authorization": "Bearer x"})
    ).status_code == 401


async def test_apply_export_round_trip_on_postgres(
    api: tuple[httpx.AsyncClient, ControlPlaneSettings],
) -> None:
    client, _ = api
    first = (await client.post("/api/v1/config/apply", json={"document": DOC})).json()
    assert first["changed"] and len(first["changes"]) == 7
    assert [k["name"] for k in first["created_keys"]] == ["generated"]
    version = first["version"]
    second = (await client.post("/api/v1/config/apply", json={"document": DOC})).json()
    assert second == {**second, "changed": False, "created_keys": [], "version": version}

    exported = (await client.get("/api/v1/config/export")).json()
    assert "sk-ds" not in repr(exported)
    assert [p.get("api_key_env") for p in exported["providers"]] == [None, "VLLM_KEY"]
    assert (await client.post("/api/v1/config/apply", json={"document": exported})).json()["changed"] is False
    assert (await client.get("/api/v1/snapshot")).json()["version"] == version


async def test_usage_on_postgres(api: tuple[httpx.AsyncClient, ControlPlaneSettings]) -> None:
    client, settings = api
    now = datetime.now(UTC)
    engine = make_engine(settings.database_url)
    base = {
        "ts": now.timestamp(), "org": "acme", "org_id": "o", "capability": "llm", "provider": "p",
        "upstream_model": "u", "status": 200, "input_tokens": 3, "output_tokens": 4, "cost": 0.25,
        "latency_ms": 5.0,
    }  # fmt: skip
    events = [
        UsageEvent(**{**base, "id": "a", "key_id": "k1", "model": "m1"}),  # type: ignore[arg-type]
        UsageEvent(**{**base, "id": "b", "key_id": "k2", "model": "m1", "status": 500}),  # type: ignore[arg-type]
        UsageEvent(**{**base, "id": "c", "key_id": "k2", "model": "m2"}),  # type: ignore[arg-type]
    ]
    try:
        # What the ingest writer does per batch: ledger rows, then their rollups (which
        # the usage API reads).
        with engine.begin() as conn:
            upsert_rollups(conn, aggregate(insert_new_events(conn, events)))
    finally:
        engine.dispose()
    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    by_model = (await client.get("/api/v1/usage", params={**window, "group_by": "model"})).json()
    assert [(r["model"], r["requests"], r["errors"]) for r in by_model["rows"]] == [
        ("m1", 2, 1),
        ("m2", 1, 0),
    ]
    by_key = (await client.get("/api/v1/usage", params={**window, "group_by": "key"})).json()
    assert [(r["key_id"], r["requests"]) for r in by_key["rows"]] == [("k1", 1), ("k2", 2)]
