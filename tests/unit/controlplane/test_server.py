"""serve(): embedded start-up on SQLite, bootstrap document, clean cancellation."""

from __future__ import annotations

import asyncio
import socket

import grpc
import httpx
import pytest
from switchyard_common.config_schema import parse_config
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_common.proto import controlplane_pb2_grpc as pb_grpc
from switchyard_controlplane.config_apply import ApplyResult
from switchyard_controlplane.server import serve
from switchyard_controlplane.settings import ControlPlaneSettings

from ...conftest import free_port

BOOTSTRAP = parse_config(
    {
        "organizations": [{"name": "acme"}],
        "providers": [{"slug": "mock", "api_format": "mock"}],
        "models": [{"name": "chat", "targets": [{"provider": "mock", "model": "echo"}]}],
        "keys": [{"name": "first", "org": "acme"}],
    }
)


def _settings(settings: ControlPlaneSettings) -> ControlPlaneSettings:
    return settings.model_copy(update={"controlplane_port": free_port(), "grpc_port": free_port()})


async def test_serve_bootstraps_and_stops_on_cancel(settings: ControlPlaneSettings) -> None:
    settings = _settings(settings)
    ready = asyncio.Event()
    results: list[ApplyResult] = []
    task = asyncio.create_task(serve(settings, bootstrap=BOOTSTRAP, ready=ready, on_bootstrap=results.append))
    await asyncio.wait_for(ready.wait(), timeout=30)
    try:
        assert results[0].changed and results[0].created_keys[0].key.startswith("gk_")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.controlplane_port}") as client:
            assert (await client.get("/readyz")).status_code == 200
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            stream = pb_grpc.ControlPlaneStub(channel).WatchSnapshot(pb.WatchSnapshotRequest())  # type: ignore[no-untyped-call]
            first = await asyncio.wait_for(stream.read(), timeout=10)
            assert first.version == results[0].version and [m.name for m in first.models] == ["chat"]
            task.cancel()
            await asyncio.wait([task], timeout=15)
            assert task.done()
            # The open watch stream ends with the server instead of hanging.
            end = await asyncio.wait_for(stream.read(), timeout=10)
            assert end is grpc.aio.EOF
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=15)


async def test_bootstrap_is_idempotent_across_restarts(settings: ControlPlaneSettings) -> None:
    for expected_change in (True, False):
        settings = _settings(settings)
        ready = asyncio.Event()
        results: list[ApplyResult] = []
        task = asyncio.create_task(
            serve(settings, bootstrap=BOOTSTRAP, ready=ready, on_bootstrap=results.append)
        )
        await asyncio.wait_for(ready.wait(), timeout=30)
        task.cancel()
        await asyncio.wait([task], timeout=15)
        assert results[0].changed is expected_change


async def test_port_in_use_is_an_error(settings: ControlPlaneSettings) -> None:
    settings = _settings(settings)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", settings.controlplane_port))
        busy.listen()
        with pytest.raises(OSError):
            await asyncio.wait_for(serve(settings), timeout=30)


async def test_secret_key_is_required(settings: ControlPlaneSettings) -> None:
    with pytest.raises(ValueError, match="SWITCHYARD_SECRET_KEY"):
        await serve(settings.model_copy(update={"secret_key": ""}))


async def test_grpc_port_in_use_is_an_error(settings: ControlPlaneSettings) -> None:
    first = _settings(settings)
    ready = asyncio.Event()
    task = asyncio.create_task(serve(first, ready=ready))
    await asyncio.wait_for(ready.wait(), timeout=30)
    try:
        clash = _settings(settings).model_copy(update={"grpc_port": first.grpc_port})
        with pytest.raises(OSError, match="gRPC"):
            await asyncio.wait_for(serve(clash), timeout=30)
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=15)
