"""Runs the data plane: snapshot watch, usage publisher, upstream pool and the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

import uvicorn
from switchyard_common import governance_registry
from switchyard_common.bus import EventPublisher
from switchyard_common.serving import QuietServer, bind_socket
from switchyard_common.tracing import configure_tracing, flush_tracing

from .admission.governor import Governor
from .app import create_app
from .breaker_redis import RedisBreakerStore
from .breakers import Breakers, BreakerStore, LocalBreakerStore
from .image_inline import any_host, public_hosts_only
from .index import IndexHolder
from .metrics import Metrics
from .redis_link import RedisLink
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


def _breaker_store(link: RedisLink | None, settings: DataPlaneSettings) -> BreakerStore:
    if link is None:
        # Embedded mode: breakers live in this process, where the control plane (same
        # process) reads them for its breaker endpoint.
        local = LocalBreakerStore()
        governance_registry.LOCAL_BREAKERS = local
        return local
    return RedisBreakerStore(link, interval=settings.breaker_refresh_seconds)


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
    # The one Redis connection of limits, budgets and breakers; None: embedded mode.
    redis = (
        RedisLink(settings.redis_url, settings.redis_prefix, timeout=settings.redis_timeout)
        if settings.redis_url
        else None
    )
    breaker_store = _breaker_store(redis, settings)
    governor = Governor(
        link=redis, window_seconds=settings.rate_window_seconds, metrics=metrics, prefix=settings.redis_prefix
    )
    if redis is None:
        # Embedded mode: budget counters live here; the control plane (same process)
        # reads them through the registry.
        governance_registry.LOCAL_BUDGETS = governor.local
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
        breakers=Breakers(breaker_store, metrics),
        governor=governor,
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
    # Polls Redis for every breaker's state into the view the hot path reads.
    breaker_refresh = (
        asyncio.create_task(breaker_store.run(), name="switchyard-dataplane-breakers")
        if isinstance(breaker_store, RedisBreakerStore)
        else None
    )
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
        if breaker_refresh is not None:
            breaker_refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await breaker_refresh
        await governor.drain()  # settlements in flight, before Redis closes
        # Embedded mode: the control plane must not read the stores of a stopped data
        # plane (a later one in the same process registers its own).
        if governance_registry.LOCAL_BREAKERS is breaker_store:
            governance_registry.LOCAL_BREAKERS = None
        if governance_registry.LOCAL_BUDGETS is governor.local:
            governance_registry.LOCAL_BUDGETS = None
        if redis is not None:
            await redis.close()
        sock.close()
        await upstream.aclose()
        await publisher.close()
        await asyncio.to_thread(flush_tracing)
