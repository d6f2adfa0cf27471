"""Two control-plane replicas on one Postgres database stay coherent: a change
committed through replica B reaches a gRPC watcher of replica A within a second."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
import pytest
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_common.proto import controlplane_pb2_grpc as pb_grpc

from .test_controlplane_rest import admin_client, replica_settings, start_replica, stop_replica

pytestmark = pytest.mark.integration


async def test_change_through_b_reaches_watcher_of_a(pg_url: str) -> None:
    settings_a, settings_b = replica_settings(pg_url), replica_settings(pg_url)
    # Started together: both migrate the same empty database at once.
    task_a, task_b = await asyncio.gather(start_replica(settings_a), start_replica(settings_b))
    client_b: httpx.AsyncClient | None = None
    try:
        client_b = await admin_client(settings_b)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings_a.grpc_port}") as channel:
            stub = pb_grpc.ControlPlaneStub(channel)  # type: ignore[no-untyped-call]
            start = await stub.GetSnapshot(pb.GetSnapshotRequest())
            stream = stub.WatchSnapshot(
                pb.WatchSnapshotRequest(known_version=start.version, dataplane_id="it")
            )
            if start.version == 0:
                # Version 0 means "nothing yet": the fresh install's empty snapshot comes first.
                assert (await asyncio.wait_for(stream.read(), timeout=10)).version == 0

            began = time.monotonic()
            response = await client_b.post("/api/v1/organizations", json={"name": "acme"})
            assert response.status_code == 201
            snap = await asyncio.wait_for(stream.read(), timeout=10)
            elapsed = time.monotonic() - began
            assert snap.version == start.version + 1
            assert [o.name for o in snap.organizations] == ["acme"]
            assert elapsed < 1.0, f"replica A published the change after {elapsed:.2f} s"

            created = await client_b.post("/api/v1/keys", json={"name": "svc", "org": "acme"})
            key_id = created.json()["id"]
            with_key = await asyncio.wait_for(stream.read(), timeout=10)
            assert [(k.id, k.revoked) for k in with_key.keys] == [(key_id, False)]

            assert (await client_b.post(f"/api/v1/keys/{key_id}/revoke")).status_code == 200
            revoked = await asyncio.wait_for(stream.read(), timeout=10)
            assert revoked.version == with_key.version + 1
            assert [(k.id, k.revoked) for k in revoked.keys] == [(key_id, True)]
            stream.cancel()

            # Both replicas report the same database version.
            client_a = await admin_client(settings_a)
            try:
                version_a = (await client_a.get("/api/v1/snapshot")).json()["version"]
            finally:
                await client_a.aclose()
            assert version_a == (await client_b.get("/api/v1/snapshot")).json()["version"] == revoked.version
    finally:
        if client_b is not None:
            await client_b.aclose()
        await asyncio.gather(stop_replica(task_a), stop_replica(task_b))
