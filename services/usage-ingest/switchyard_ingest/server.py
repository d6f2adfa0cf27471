"""The usage-ingest process: a consumer (JetStream or the in-process bus) and the
health/metrics HTTP server, in the running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

import uvicorn
from sqlalchemy import Engine
from switchyard_common.bus import InProcessBus
from switchyard_common.db import make_engine
from switchyard_common.serving import QuietServer, bind_socket
from switchyard_common.tracing import configure_tracing, flush_tracing

from .bus_consumer import BusConsumer
from .consumer import JetStreamConsumer
from .http import build_app
from .metrics import IngestMetrics
from .pipeline import IngestPipeline
from .settings import IngestSettings
from .timeseries import TimeSeriesWriter
from .writer import UsageWriter

__all__ = ["serve"]

log = logging.getLogger(__name__)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel and wait, repeating the cancel: on Python 3.11 `asyncio.wait_for` (used by
    the bus and by nats-py) swallows a cancellation that races with its result."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if not task.cancelled() and task.exception() is not None:
        log.error("usage consumer failed", exc_info=task.exception())


def tune_gc() -> None:
    """A batch allocates tens of container objects per event (parsed JSON, events,
    messages, rows). With the default threshold (700) the collector ran every few
    events, and its older generations walked the whole heap: a third of the decode
    time. Start-up objects are frozen out of collection and young ones collected
    every 50,000 allocations; the ingest's garbage is acyclic and freed by reference
    counting anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def serve(
    settings: IngestSettings,
    *,
    bus: InProcessBus | None = None,
    engine: Engine | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run the ingest until cancelled. With `bus` (embedded mode) events come from the
    in-process bus, otherwise from JetStream. `engine` defaults to one built from
    `settings.database_url`; the schema must exist (control-plane migrations)."""
    configure_tracing("switchyard-ingest")
    if bus is None:
        # Split mode: this process is the ingest alone (embedded mode shares its
        # process with the other tiers, whose collector settings are theirs).
        tune_gc()
    own_engine = engine is None
    db = engine if engine is not None else make_engine(settings.database_url)
    metrics = IngestMetrics()
    timeseries = (
        TimeSeriesWriter(settings.timeseries_url, timeout=settings.timeseries_timeout)
        if settings.timeseries_url
        else None
    )
    pipeline = IngestPipeline(UsageWriter(db, timeseries), metrics)
    consumer: BusConsumer | JetStreamConsumer
    if bus is not None:
        consumer = BusConsumer(
            bus, pipeline, batch_size=settings.batch_size, batch_timeout=settings.batch_timeout
        )
    else:
        consumer = JetStreamConsumer(settings, pipeline)

    async def readiness() -> dict[str, bool]:
        checks = {"database": await pipeline.writer.ping()}
        if bus is None:
            checks["nats"] = consumer.ready
        return checks

    config = uvicorn.Config(
        build_app(metrics, readiness, consumer.refresh_lag),
        loop="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        # The process's logging config (switchyard_common.logs) formats uvicorn's lines too.
        log_config=None,
    )
    server = QuietServer(config)
    sock = bind_socket(settings.ingest_host, settings.ingest_port)
    http_task = asyncio.create_task(server.serve(sockets=[sock]), name="ingest-http")
    consumer_task = asyncio.create_task(consumer.run(), name="ingest-consumer")
    try:
        while not server.started:
            if http_task.done():
                raise RuntimeError(
                    f"ingest HTTP server could not listen on {settings.ingest_host}:{settings.ingest_port}"
                )
            await asyncio.sleep(0.02)
        log.info(
            "usage ingest listening on %s:%d (%s)",
            settings.ingest_host,
            settings.ingest_port,
            "in-process bus" if bus is not None else f"NATS {settings.nats_url}",
        )
        if ready is not None:
            ready.set()
        done, _ = await asyncio.wait({http_task, consumer_task}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # surface the error of whichever stopped first
        raise RuntimeError("usage ingest stopped unexpectedly")
    finally:
        await _cancel(consumer_task)
        if isinstance(consumer, BusConsumer):
            await consumer.flush()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, BaseException):
            await asyncio.wait_for(http_task, 5)
        pipeline.writer.close()
        if own_engine:
            db.dispose()
        await asyncio.to_thread(flush_tracing)
