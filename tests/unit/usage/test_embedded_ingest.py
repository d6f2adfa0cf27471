"""The ingest in embedded mode: the in-process bus drained into SQLite."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from sqlalchemy import Engine, func, select
from switchyard_common.bus import BusMessage, InProcessBus
from switchyard_common.db import METADATA, make_engine
from switchyard_common.usage import encode_event
from switchyard_common.usage_store import USAGE_TABLES, usage_events
from switchyard_ingest import IngestSettings, serve

from tests.conftest import free_port

from .test_usage_store import make_event


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    METADATA.create_all(engine, tables=USAGE_TABLES)
    yield engine
    engine.dispose()


@pytest.fixture
async def running(engine: Engine) -> AsyncIterator[tuple[InProcessBus, str]]:
    bus = InProcessBus()
    port = free_port()
    settings = IngestSettings(ingest_port=port, batch_size=50, batch_timeout=0.05, database_url="sqlite://")
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, bus=bus, engine=engine, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    yield bus, f"http://127.0.0.1:{port}"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(usage_events)) or 0)


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _message(n: int) -> BusMessage:
    event = make_event(n)
    return BusMessage(f"usage.{event.org}", event.id, encode_event(event))


async def test_bus_events_become_rows_once(engine: Engine, running: tuple[InProcessBus, str]) -> None:
    bus, base = running
    for n in range(120):
        bus.publish_nowait(_message(n))
    bus.publish_nowait(BusMessage("usage.acme", "poison-1", b"{not json"))
    for n in range(100, 130):  # 20 redelivered, 10 new
        bus.publish_nowait(_message(n))
    await _until(lambda: _rows(engine) == 130 and bus.pending() == 0)

    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": True}
        metrics = (await client.get("/metrics")).text
    assert "switchyard_ingest_events_ingested_total 130.0" in metrics
    assert "switchyard_ingest_duplicates_skipped_total 20.0" in metrics
    assert "switchyard_ingest_dead_lettered_total 1.0" in metrics


async def test_pending_events_are_flushed_on_shutdown(engine: Engine) -> None:
    bus = InProcessBus()
    settings = IngestSettings(ingest_port=free_port(), batch_size=10, batch_timeout=5.0)
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, bus=bus, engine=engine, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    for n in range(35):
        bus.publish_nowait(_message(n))
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert _rows(engine) == 35
