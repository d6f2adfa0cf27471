"""Snapshot building, the hub's fan-out and the gRPC service, on SQLite."""

from __future__ import annotations

import asyncio

import grpc
from sqlalchemy import Engine
from switchyard_common.config_schema import parse_config
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_common.proto import controlplane_pb2_grpc as pb_grpc
from switchyard_common.secrets import SecretBox, hash_api_key
from switchyard_controlplane import repo
from switchyard_controlplane.config_apply import apply_document
from switchyard_controlplane.grpc_server import start_grpc_server
from switchyard_controlplane.settings import ControlPlaneSettings
from switchyard_controlplane.snapshot_builder import build_snapshot_from_engine
from switchyard_controlplane.snapshot_hub import SnapshotHub, Watcher

from ...conftest import free_port

KEY = "gk_" + "k" * 40
DOC = {
    "organizations": [{"name": "acme", "policy": {"audit": "metadata"}}],
    "providers": [
        {"slug": "up", "api_format": "anthropic", "base_url": "https://up.example", "api_key": "sk-up"},
        {
            "slug": "env",
            "api_format": "openai",
            "base_url": "https://env.example",
            "api_key_env": "ENV_KEY",
            "auth_header": "X-Api-Key",
        },
    ],
    "models": [
        {
            "name": "chat",
            "capability": "llm",
            "targets": [
                {"provider": "up", "model": "claude", "priority": 0, "weight": 2},
                {"provider": "env", "model": "gpt"},
            ],
        }
    ],
    "prices": [{"model": "chat", "unit": "output_token", "per_million": 3.0}],
    "keys": [
        {
            "name": "svc",
            "org": "acme",
            "value": KEY,
            "models": ["chat"],
            "limits": {"rpm": 60, "tpm": 1000, "budget": {"amount": 9.5, "period": "day"}},
        }
    ],
}


def _apply(engine: Engine, settings: ControlPlaneSettings, doc: dict[str, object]) -> int:
    return apply_document(engine, settings, parse_config(doc)).version


def test_snapshot_carries_the_whole_config(engine: Engine, settings: ControlPlaneSettings) -> None:
    version = _apply(engine, settings, DOC)
    snap = build_snapshot_from_engine(engine)
    assert snap.version == version == 1 and snap.id and snap.created_at_ms > 0
    (org,) = snap.organizations
    # `audit: metadata` is the default: nothing is stored, but the policy is complete.
    assert org.name == "acme" and dict(org.policy_raw) == {}
    policy = org.policy
    assert (policy.routing, policy.overflow, policy.audit) == ("priority", "next_target", "metadata")
    assert (org.policy.breaker.failure_threshold, org.policy.breaker.cooldown_seconds) == (5, 30.0)
    assert list(org.policy.retry.retry_on) == ["connect_error", "timeout", "429", "5xx"]
    up = next(p for p in snap.providers if p.slug == "up")
    assert SecretBox(settings.secret_key).decrypt(up.api_key_encrypted) == "sk-up"
    env = next(p for p in snap.providers if p.slug == "env")
    assert (env.api_key_encrypted, env.api_key_env) == ("", "ENV_KEY")
    assert (env.auth_header, up.auth_header) == ("X-Api-Key", "")
    (model,) = snap.models
    assert [(t.provider_slug, t.upstream_model, t.priority, t.weight) for t in model.targets] == [
        ("up", "claude", 0, 2),
        ("env", "gpt", 0, 1),
    ]
    assert [(p.model, p.unit, p.per_million, p.currency) for p in snap.prices] == [
        ("chat", "output_token", 3.0, "USD")
    ]
    (key,) = snap.keys
    assert key.key_hash == hash_api_key(KEY) and not key.revoked and key.org_id == snap.organizations[0].id
    assert list(key.models) == ["chat"] and list(key.scopes) == ["llm"]
    assert (key.limits.rpm, key.limits.tpm, key.limits.concurrency) == (60, 1000, 0)
    assert [(b.amount, b.currency, b.period) for b in key.limits.budgets] == [(9.5, "USD", "day")]
    assert key.expires_at == 0 and not key.disabled
    assert list(key.allowed_cidrs) == [] and list(key.shadow) == []
    assert not up.disabled and len(up.breaker_epoch) == 12 and up.breaker_epoch != env.breaker_epoch
    assert (model.routing, model.max_output_tokens, list(model.shadow)) == ("", 4096, [])
    assert (model.limits.rpm, model.targets[0].limits.rpm) == (0, 0)


async def test_watcher_keeps_only_the_newest() -> None:
    watcher = Watcher()
    for version in (1, 2, 3):
        watcher.offer(pb.Snapshot(version=version))
    assert (await watcher.next()).version == 3  # type: ignore[union-attr]


async def test_hub_publishes_committed_changes(engine: Engine, settings: ControlPlaneSettings) -> None:
    hub = SnapshotHub(engine, poll_interval=0.05)
    await hub.start()
    try:
        assert hub.current is not None and hub.current.version == 0
        async with hub.subscribe() as watcher:
            # Written by a separate session: the hub learns of it only from the database.
            await asyncio.to_thread(_apply, engine, settings, DOC)
            snap = await asyncio.wait_for(watcher.next(), timeout=10)
            assert snap is not None and snap.version == 1 and len(snap.keys) == 1
        assert hub.watcher_count == 0
    finally:
        await hub.stop()


async def test_grpc_watch_and_get(engine: Engine, settings: ControlPlaneSettings) -> None:
    hub = SnapshotHub(engine, poll_interval=0.05)
    await hub.start()
    port = free_port()
    server = await start_grpc_server(hub, host="127.0.0.1", port=port)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ControlPlaneStub(channel)  # type: ignore[no-untyped-call]
            assert (await stub.GetSnapshot(pb.GetSnapshotRequest())).version == 0
            stream = stub.WatchSnapshot(pb.WatchSnapshotRequest(known_version=0, dataplane_id="t"))
            # A fresh install (version 0, nothing configured) is still a snapshot to serve:
            # a data plane with none becomes ready on it.
            empty = await asyncio.wait_for(stream.read(), timeout=10)
            assert empty.version == 0 and not empty.keys
            await asyncio.to_thread(_apply, engine, settings, DOC)
            first = await asyncio.wait_for(stream.read(), timeout=10)
            assert first.version == 1

            sessions = repo.make_sessionmaker(engine)

            def revoke() -> None:
                with sessions() as session:
                    key = repo.keys.list_keys(session)[0]
                    repo.keys.revoke_key(session, key=key)
                    session.commit()

            await asyncio.to_thread(revoke)
            second = await asyncio.wait_for(stream.read(), timeout=10)
            assert second.version == 2 and second.keys[0].revoked
            stream.cancel()

            # A watcher that already has the current version gets nothing until the next change.
            up_to_date = stub.WatchSnapshot(pb.WatchSnapshotRequest(known_version=2))
            await asyncio.to_thread(_apply, engine, settings, {"organizations": [{"name": "other"}]})
            third = await asyncio.wait_for(up_to_date.read(), timeout=10)
            assert third.version == 3
            up_to_date.cancel()
    finally:
        await hub.stop()
        await server.stop(0)
