"""The gRPC `ControlPlane` service: data planes watch (or fetch) the snapshot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_common.proto import controlplane_pb2_grpc as pb_grpc

from .snapshot_hub import SnapshotHub

__all__ = ["ControlPlaneService", "start_grpc_server"]

log = logging.getLogger(__name__)


class ControlPlaneService(pb_grpc.ControlPlaneServicer):
    def __init__(self, hub: SnapshotHub) -> None:
        self._hub = hub

    async def WatchSnapshot(  # noqa: N802  (gRPC method name)
        self, request: pb.WatchSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.Snapshot]:
        last_sent = request.known_version
        log.info("data plane %r watching from version %d", request.dataplane_id, last_sent)
        # Subscribe before reading `current` so a version published in between is not lost.
        async with self._hub.subscribe() as watcher:
            current = self._hub.current
            if current is not None and current.version > last_sent:
                yield current
                last_sent = current.version
            while True:
                snapshot = await watcher.next()
                if snapshot is None:  # hub stopping: end the stream, clients reconnect
                    return
                if snapshot.version > last_sent:
                    yield snapshot
                    last_sent = snapshot.version

    async def GetSnapshot(  # noqa: N802  (gRPC method name)
        self, request: pb.GetSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> pb.Snapshot:
        current = self._hub.current
        if current is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no snapshot built yet")
        assert current is not None
        return current


async def start_grpc_server(hub: SnapshotHub, *, host: str, port: int) -> grpc.aio.Server:
    """Started server bound to host:port (raises if the port cannot be bound)."""
    # No SO_REUSEPORT: a second server on the same port must fail, not share the traffic.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_ControlPlaneServicer_to_server(ControlPlaneService(hub), server)  # type: ignore[no-untyped-call]
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # grpc reports bind failures as RuntimeError
        raise OSError(f"cannot bind gRPC port {host}:{port}: {exc}") from exc
    if bound == 0:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    return server
