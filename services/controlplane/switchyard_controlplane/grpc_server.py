"""The gRPC `ControlPlane` service: data planes watch (or fetch) the snapshot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_common.proto import controlplane_pb2_grpc as pb_grpc
from switchyard_common.tracing import TRACING

from . import metrics
from .request_tracing import tracer
from .snapshot_hub import SnapshotHub

__all__ = ["ControlPlaneService", "start_grpc_server"]

log = logging.getLogger(__name__)


class ControlPlaneService(pb_grpc.ControlPlaneServicer):
    def __init__(self, hub: SnapshotHub) -> None:
        self._hub = hub

    async def WatchSnapshot(  # noqa: N802  (gRPC method name)
        self, request: pb.WatchSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.Snapshot]:
        # A data plane with nothing (known_version 0) gets the current snapshot even at
        # version 0, the empty configuration of a fresh install: without it, it would
        # never become ready until the first change.
        last_sent = request.known_version if request.known_version > 0 else -1
        log.info("data plane %r watching from version %d", request.dataplane_id, last_sent)
        try:
            # Subscribe before reading `current` so a version published in between is not lost.
            async with self._hub.subscribe() as watcher:
                snapshot = self._hub.current
                while True:
                    if snapshot is not None and snapshot.version > last_sent:
                        span = self._push_span(snapshot, request.dataplane_id) if TRACING.enabled else None
                        try:
                            # Resumes once grpc has written the message: the span times the push.
                            yield snapshot
                        except BaseException:
                            if span is not None:
                                span.set_status(Status(StatusCode.ERROR, "stream closed during the push"))
                            raise
                        finally:
                            if span is not None:
                                span.end()
                        metrics.SNAPSHOT_PUSHES.inc()
                        last_sent = snapshot.version
                    snapshot = await watcher.next()
                    if snapshot is None:  # hub stopping: end the stream, clients reconnect
                        return
        finally:
            log.info("data plane %r stopped watching", request.dataplane_id)

    def _push_span(self, snapshot: pb.Snapshot, dataplane_id: str) -> Span:
        built = self._hub.build_span_context(snapshot.version)
        parent = trace.set_span_in_context(NonRecordingSpan(built)) if built is not None else None
        return tracer().start_span(
            "WatchSnapshot push",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": "switchyard.v1.ControlPlane",
                "rpc.method": "WatchSnapshot",
                "switchyard.dataplane_id": dataplane_id,
                "switchyard.snapshot.version": snapshot.version,
            },
        )

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
