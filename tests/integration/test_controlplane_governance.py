"""Control plane governance on real Postgres and Redis: migration 0003 over old rows, a
governance round trip through REST and the snapshot, breaker and budget state read
from Redis (REST and `switchyard usage budget`), and a dead Redis answering 503."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from switchyard_cli.main import main as cli_main
from switchyard_common.breaker_state import breaker_key, breaker_set_key
from switchyard_common.budget_state import NANO, budget_key
from switchyard_common.db import make_engine
from switchyard_controlplane.settings import ControlPlaneSettings
from switchyard_controlplane.snapshot_builder import build_snapshot_from_engine

from ..conftest import REDIS_URL, free_port, unique_name
from ..unit.controlplane.test_governance_config import DOC as GOVERNANCE_DOC
from ..unit.controlplane.test_migration_0003 import check_0003_upgrade
from .test_controlplane_rest import ADMIN, admin_client, replica_settings, start_replica, stop_replica

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_0003_upgrades_old_rows_on_postgres(pg_url: str) -> None:
    check_0003_upgrade(pg_url)


@contextlib.asynccontextmanager
async def _replica(settings: ControlPlaneSettings) -> AsyncIterator[httpx.AsyncClient]:
    task = await start_replica(settings)
    client = await admin_client(settings)
    try:
        yield client
    finally:
        await client.aclose()
        await stop_replica(task)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = unique_name("sytest") + ":"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_governance_round_trip_on_postgres(pg_url: str) -> None:
    settings = replica_settings(pg_url)
    async with _replica(settings) as client:
        first = (await client.post("/api/v1/config/apply", json={"document": GOVERNANCE_DOC})).json()
        assert first["changed"] and first["warnings"] == []
        again = (await client.post("/api/v1/config/apply", json={"document": GOVERNANCE_DOC})).json()
        assert again["changed"] is False and again["version"] == first["version"]
        exported = (await client.get("/api/v1/config/export")).json()
        assert (await client.post("/api/v1/config/apply", json={"document": exported})).json()[
            "changed"
        ] is False

        # REST writes of each kind land in the snapshot the data planes receive.
        key_id = (await client.get("/api/v1/keys")).json()["data"][0]["id"]
        assert (await client.patch(f"/api/v1/keys/{key_id}", json={"enabled": True})).status_code == 200
        assert (await client.patch("/api/v1/providers/off", json={"enabled": True})).status_code == 200
        assert (await client.patch("/api/v1/models/chat", json={"limits": {"tpm": 5}})).status_code == 200
        dated = {"model": "up/m1", "unit": "input_token", "per_million": 0.4, "effective_from": "2031-01-01"}
        assert (await client.post("/api/v1/prices", json=dated)).status_code == 201
        policy = copy.deepcopy(GOVERNANCE_DOC["organizations"][0]["policy"]) | {"routing": "weighted"}
        assert (await client.patch("/api/v1/organizations/acme", json={"policy": policy})).status_code == 200
        version = (await client.get("/api/v1/snapshot")).json()["version"]
        assert version == first["version"] + 5

    engine = make_engine(pg_url)
    try:
        snap = build_snapshot_from_engine(engine)
    finally:
        engine.dispose()
    assert snap.version == version
    assert not snap.keys[0].disabled and not any(p.disabled for p in snap.providers)
    assert (snap.models[0].limits.rpm, snap.models[0].limits.tpm) == (0, 5)
    assert [p.effective_from_ms for p in snap.prices if p.model == "up/m1" and p.unit == "input_token"] == [
        0,
        1924992000000,
    ]
    acme = next(o for o in snap.organizations if o.name == "acme")
    assert (acme.policy.routing, acme.policy.overflow) == ("weighted", "fail")


async def _seed_state(prefix: str, epoch: str, key_id: str, org_id: str) -> None:
    """Counters as the data planes write them (switchyard_common breaker/budget state)."""
    client = aioredis.Redis.from_url(REDIS_URL)
    now = time.time()
    try:
        hash_key = breaker_key(prefix, "up", epoch, "m1")
        await client.hset(
            hash_key,
            mapping={
                "p": "up",
                "e": epoch,
                "m": "m1",
                "s": "open",
                "f": 3,
                "u": int((now + 60) * 1000),
                "pu": 0,
            },
        )
        await client.sadd(breaker_set_key(prefix), hash_key)
        day = budget_key(prefix, "key", key_id, "day", "USD", now)
        await client.hset(day, mapping={"spent": int(1.25 * NANO), "reserved": int(0.5 * NANO)})
        week = budget_key(prefix, "org", org_id, "week", "EUR", now)
        await client.hset(week, mapping={"spent": 40 * NANO, "reserved": 0})
    finally:
        await client.aclose()


async def test_breaker_and_budget_state_from_redis(
    pg_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = replica_settings(pg_url).model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    )
    async with _replica(settings) as client:
        await client.post("/api/v1/config/apply", json={"document": GOVERNANCE_DOC})
        epoch = (await client.get("/api/v1/providers/up")).json()["breaker_epoch"]
        key_id = (await client.get("/api/v1/keys")).json()["data"][0]["id"]
        org_id = (await client.get("/api/v1/organizations/acme")).json()["id"]
        empty = (await client.get("/api/v1/breakers")).json()
        assert empty == {"source": "redis", "data": []}
        await _seed_state(redis_prefix, epoch, key_id, org_id)

        breakers = (await client.get("/api/v1/breakers", params={"provider": "up"})).json()["data"]
        assert [(b["upstream_model"], b["state"], b["failures"], b["current"]) for b in breakers] == [
            ("m1", "open", 3, True)
        ]
        # A credential change moves the provider to a new epoch: the old breaker is history.
        await client.patch("/api/v1/providers/up", json={"api_key": "sk-rotated"})
        (stale,) = (await client.get("/api/v1/breakers")).json()["data"]
        assert stale["current"] is False

        key_budget = (await client.get(f"/api/v1/keys/{key_id}/budget")).json()
        assert key_budget["source"] == "redis" and key_budget["shadow"] is True
        assert [
            (u["period"], u["currency"], u["spent"], u["reserved"], u["remaining"])
            for u in key_budget["budgets"]
        ] == [
            ("day", "USD", 1.25, 0.5, 3.25),
            ("month", "EUR", 0.0, 0.0, 50.0),
        ]
        org_budget = (await client.get("/api/v1/organizations/acme/budget")).json()
        assert [(u["period"], u["spent"], u["remaining"]) for u in org_budget["budgets"]] == [
            ("week", 40.0, 60.0)
        ]

        # The CLI reads the same endpoints.
        monkeypatch.setenv("SWITCHYARD_CONTROLPLANE_URL", f"http://127.0.0.1:{settings.controlplane_port}")
        monkeypatch.setenv("SWITCHYARD_ADMIN_EMAIL", ADMIN["email"])
        monkeypatch.setenv("SWITCHYARD_ADMIN_PASSWORD", ADMIN["password"])
        monkeypatch.delenv("SWITCHYARD_ADMIN_TOKEN", raising=False)
        capsys.readouterr()
        args = ["usage", "budget", "--key", "svc", "--org", "acme"]
        assert await asyncio.to_thread(cli_main, [*args, "--output", "json"]) == 0
        shown: dict[str, Any] = json.loads(capsys.readouterr().out)
        assert shown["key"]["budgets"] == key_budget["budgets"] and shown["org"]["org"] == "acme"
        assert await asyncio.to_thread(cli_main, args) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:3] == ["SCOPE", "OWNER", "PERIOD"]
        assert [line.split()[:4] for line in table[1:]] == [
            ["key", "(shadow)", "acme/svc", "day"],
            ["key", "(shadow)", "acme/svc", "month"],
            ["org", "acme", "week", (org_budget["budgets"][0]["period_start"] or "")[:10]],
        ]
        assert await asyncio.to_thread(cli_main, ["usage", "budget"]) == 2


async def test_unreachable_redis_answers_503_without_hanging(pg_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = replica_settings(pg_url).model_copy(update={"redis_url": dead})
    async with _replica(settings) as client:
        await client.post("/api/v1/config/apply", json={"document": GOVERNANCE_DOC})
        key_id = (await client.get("/api/v1/keys")).json()["data"][0]["id"]
        for path in ("/api/v1/breakers", f"/api/v1/keys/{key_id}/budget"):
            started = time.monotonic()
            response = await client.get(path)
            assert response.status_code == 503 and response.json()["error"]["code"] == "state_unavailable"
            assert "Redis" in response.json()["error"]["message"]
            assert time.monotonic() - started < 8
