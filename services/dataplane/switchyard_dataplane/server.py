"""Runs the data plane: snapshot watch, usage publisher, upstream pool and the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

import uvicorn
from switchyard_common.bus import EventPublisher
from switchyard_common.serving import QuietServer, bind_socket
from switchyard_common.tracing import configure_tracing, flush_tracing

from .app import create_app
from .image_inline import any_host, public_hosts_only
from .index import IndexHolder
from .metrics import Metrics
from .settings import DataPlaneSettings
from .snapshot_client import SnapshotClient
from .upstream import HttpxUpstream
from .upstream_aiohttp import AiohttpTransport

__all__ = ["serve"]

log = logging.getLogger(__name__)

_SHUTDOWN_GRACE_SECONDS = 10


def _default_publisher(settings: DataPlaneSettings) -> EventPublisher:
    from .nats_publisher import NatsPublisher  # only split mode needs NATS

    publisher: EventPublisher = NatsPublisher(
        url=settings.nats_url,
        stream=settings.nats_stream,
        subject_prefix=settings.usage_subject_prefix,
        spool_dir=settings.spool_path,
    )
    return publisher


async def serve(
    settings: DataPlaneSettings,
    *,
    publisher: EventPublisher | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve until cancelled; `ready` is set once the HTTP server listens (readiness for
    traffic is `/readyz`, which also needs a snapshot)."""
    # Once per process (idempotent); the hot handlers test TRACING.enabled per call.
    configure_tracing("switchyard-dataplane")
    if publisher is None:
        publisher = _default_publisher(settings)
    metrics = Metrics()
    holder = IndexHolder()
    upstream = HttpxUpstream(AiohttpTransport(pool_size=settings.upstream_pool_size))
    snapshots = SnapshotClient(
        target=settings.controlplane_grpc,
        holder=holder,
        cache_path=settings.snapshot_cache_path,
        secret_key=settings.secret_key,
        env=settings.credential_env,
        metrics=metrics,
        dataplane_id=settings.resolved_dataplane_id,
        connect_timeout=settings.snapshot_connect_timeout,
        backoff_initial=settings.snapshot_backoff_initial,
        backoff_max=settings.snapshot_backoff_max,
    )
    app = create_app(
        holder=holder,
        upstream=upstream,
        publisher=publisher,
        usage_subject_prefix=settings.usage_subject_prefix,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        image_guard=any_host if settings.image_fetch_allow_private else public_hosts_only,
    )
    forwarded = settings.forwarded_allow_ips.strip()
    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        server_header=False,
        proxy_headers=bool(forwarded),
        forwarded_allow_ips=forwarded or None,
        log_config=None,
        timeout_keep_alive=75,
        backlog=4096,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE_SECONDS,
    )
    server = QuietServer(config)
    sock = bind_socket(settings.dataplane_host, settings.dataplane_port)

    await publisher.start()
    watch = asyncio.create_task(snapshots.run(), name="switchyard-dataplane-snapshots")
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="switchyard-dataplane-http")
    try:
        while not server.started:
            if serving.done():
                await serving  # surfaces the bind error
                raise RuntimeError("data plane HTTP server stopped before it started")
            await asyncio.sleep(0.02)
        log.info("data plane listening on http://%s:%s", settings.dataplane_host, settings.dataplane_port)
        # Everything allocated so far lives for the whole process: keep it out of the
        # collector's full passes, which otherwise show up as tens-of-ms tail latency.
        gc.freeze()
        if ready is not None:
            ready.set()
        # Shielded: being cancelled must shut the server down gracefully (close the
        # listener, finish in-flight calls), not interrupt it mid-loop.
        await asyncio.shield(serving)
    finally:
        server.should_exit = True
        if not serving.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(serving), _SHUTDOWN_GRACE_SECONDS + 1)
        if not serving.done():
            serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        sock.close()
        await upstream.aclose()
        await publisher.close()
        await asyncio.to_thread(flush_tracing)
