"""The snapshot watch against a real gRPC server, and booting from the cache without one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from switchyard_common.proto import controlplane_pb2_grpc
from switchyard_common.proto.controlplane_pb2 import Snapshot, WatchSnapshotRequest
from switchyard_dataplane.index import IndexHolder
from switchyard_dataplane.metrics import Metrics
from switchyard_dataplane.snapshot_client import SnapshotClient, write_snapshot_cache

from tests.conftest import free_port

from .conftest import SECRET, make_snapshot


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class _ControlPlane(controlplane_pb2_grpc.ControlPlaneServicer):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Snapshot] = asyncio.Queue()
        self.requests: list[WatchSnapshotRequest] = []

    async def WatchSnapshot(  # noqa: N802 (generated name)
        self, request: WatchSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Snapshot]:
        self.requests.append(request)
        while True:
            yield await self.queue.get()


def _client(port: int, holder: IndexHolder, cache, **kwargs) -> SnapshotClient:  # type: ignore[no-untyped-def]
    return SnapshotClient(
        target=f"127.0.0.1:{port}",
        holder=holder,
        cache_path=cache,
        secret_key=SECRET,
        env={},
        metrics=Metrics(),
        dataplane_id="dp-test",
        connect_timeout=0.3,
        backoff_initial=0.05,
        backoff_max=0.2,
        **kwargs,
    )


async def test_boots_from_cache_when_control_plane_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "state" / "snapshot.pb"
    write_snapshot_cache(cache, make_snapshot(version=7))
    holder = IndexHolder()
    task = asyncio.create_task(_client(free_port(), holder, cache).run())
    try:
        await _until(lambda: holder.current is not None)
        assert holder.current is not None and holder.current.version == 7
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_watch_swaps_caches_refuses_and_survives_outage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    cache = tmp_path / "snapshot.pb"
    servicer = _ControlPlane()
    server = grpc.aio.server()
    controlplane_pb2_grpc.add_ControlPlaneServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    holder = IndexHolder()
    client = _client(port, holder, cache)
    task = asyncio.create_task(client.run())
    try:
        await servicer.queue.put(make_snapshot(version=1))
        await _until(lambda: holder.current is not None and cache.exists())
        assert Snapshot.FromString(cache.read_bytes()).version == 1
        assert servicer.requests[0].dataplane_id == "dp-test"

        await servicer.queue.put(make_snapshot(version=2, targets=[("ghost", "m", 0)]))  # invalid
        await servicer.queue.put(make_snapshot(version=3))
        await _until(lambda: holder.current is not None and holder.current.version == 3)
        await _until(lambda: Snapshot.FromString(cache.read_bytes()).version == 3)

        await server.stop(grace=None)
        await asyncio.sleep(0.3)
        assert holder.current is not None and holder.current.version == 3  # still serving

        # the control plane comes back on the same address: the watch resumes
        server = grpc.aio.server()
        servicer = _ControlPlane()
        controlplane_pb2_grpc.add_ControlPlaneServicer_to_server(servicer, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await servicer.queue.put(make_snapshot(version=4))
        await _until(lambda: holder.current is not None and holder.current.version == 4)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.stop(grace=None)
