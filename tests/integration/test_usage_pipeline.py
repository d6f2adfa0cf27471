"""Usage pipeline against the machine's NATS JetStream and Postgres: publisher ->
stream -> usage-ingest -> usage_events, exactly once, poison messages set aside."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig
from sqlalchemy import Engine, func, select
from switchyard_common.bus import BusMessage
from switchyard_common.db import METADATA, make_engine
from switchyard_common.ids import uuid7_str
from switchyard_common.usage import Attempt, UsageEvent, encode_event
from switchyard_common.usage_dead_letters import list_dead_letters
from switchyard_common.usage_store import USAGE_TABLES, query_usage, usage_events
from switchyard_dataplane.nats_publisher import NatsPublisher
from switchyard_ingest import IngestSettings, serve

from tests.conftest import NATS_URL, free_port

pytestmark = pytest.mark.integration


def usage_event(n: int, *, org: str = "acme", model: str = "chat") -> UsageEvent:
    return UsageEvent(
        id=uuid7_str(),
        ts=time.time(),
        org=org,
        org_id="org-1",
        key_id=f"key-{n % 3}",
        capability="llm",
        model=model,
        provider="p1",
        upstream_model="up-chat",
        status=200 if n % 10 else 502,
        input_tokens=n,
        output_tokens=1,
        cost=0.001,
        latency_ms=50.0,
        attempts=[Attempt("p1", "up-chat", "ok", 49.0)],
    )


def bus_message(prefix: str, event: UsageEvent) -> BusMessage:
    return BusMessage(f"{prefix}.{event.org}", event.id, encode_event(event))


def row_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(usage_events)) or 0)


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def consumer_drained(nats_names: dict[str, str], url: str = NATS_URL) -> bool:
    """True once the durable consumer has nothing pending and nothing unacked."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(nats_names["stream"], nats_names["durable"])
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await nc.close()


async def wait_drained(nats_names: dict[str, str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await consumer_drained(nats_names):
        if time.monotonic() > deadline:
            raise AssertionError("consumer still has pending messages")
        await asyncio.sleep(0.2)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not exposed")


async def delete_streams(names: list[str], url: str = NATS_URL) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in names:
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
    finally:
        await nc.close()


@pytest.fixture
async def streams(nats_names: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    yield nats_names
    await delete_streams([nats_names["stream"], f"{nats_names['stream']}_DEADLETTER"])


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    METADATA.create_all(engine, tables=USAGE_TABLES)
    yield engine
    engine.dispose()


def ingest_settings(pg_url: str, names: dict[str, str], nats_url: str = NATS_URL) -> IngestSettings:
    return IngestSettings(
        database_url=pg_url,
        nats_url=nats_url,
        nats_stream=names["stream"],
        usage_subject_prefix=names["subject_prefix"],
        nats_durable=names["durable"],
        nats_ack_wait=3.0,
        ingest_port=free_port(),
        batch_size=50,
        batch_timeout=0.2,
    )


@contextlib.asynccontextmanager
async def running_ingest(settings: IngestSettings, engine: Engine) -> AsyncIterator[str]:
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, engine=engine, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        yield f"http://127.0.0.1:{settings.ingest_port}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_publisher(
    names: dict[str, str], spool_dir: Path, url: str = NATS_URL
) -> AsyncIterator[NatsPublisher]:
    publisher = NatsPublisher(url, names["stream"], names["subject_prefix"], spool_dir, publish_timeout=2.0)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.close()


async def test_events_land_exactly_once(
    streams: dict[str, str], pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    prefix = streams["subject_prefix"]
    events = [usage_event(n, model=("chat" if n % 2 else "embed")) for n in range(300)]
    settings = ingest_settings(pg_url, streams)
    async with running_ingest(settings, pg_engine) as base, running_publisher(streams, tmp_path) as publisher:
        for event in events:
            publisher.publish_nowait(bus_message(prefix, event))
        await wait_until(lambda: row_count(pg_engine) == 300, what="300 rows")

        # Same ids again: through the publisher (JetStream's duplicate window drops
        # them) and as fresh stream messages without a msg id (the ingest drops them).
        for event in events[:100]:
            publisher.publish_nowait(bus_message(prefix, event))
        nc = await nats.connect(NATS_URL)
        try:
            js = nc.jetstream()
            for event in events[100:150]:
                await js.publish(f"{prefix}.{event.org}", encode_event(event))
        finally:
            await nc.close()
        await wait_drained(streams)
        assert row_count(pg_engine) == 300
        assert publisher.stats.published + publisher.stats.replayed >= 400
        assert publisher.stats.dropped == 0

        async with httpx.AsyncClient(base_url=base) as client:
            ready = await client.get("/readyz")
            metrics = (await client.get("/metrics")).text
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": True, "nats": True}
        assert metric(metrics, "switchyard_ingest_events_ingested_total") == 300
        # 50 raw copies reach the ingest; the 100 publisher retries must not (JetStream
        # dedup). A redelivery under load may add a few more.
        assert 50 <= metric(metrics, "switchyard_ingest_duplicates_skipped_total") < 150

    now = datetime.now(UTC)
    with pg_engine.connect() as conn:
        by_model = query_usage(
            conn, start=now - timedelta(hours=1), end=now + timedelta(minutes=1), group_by="model"
        )
    assert {r["model"]: r["requests"] for r in by_model} == {"chat": 150, "embed": 150}
    assert sum(r["errors"] for r in by_model) == 30
    assert sum(r["input_tokens"] for r in by_model) == sum(range(300))


async def test_poison_message_is_dead_lettered_without_blocking(
    streams: dict[str, str], pg_url: str, pg_engine: Engine
) -> None:
    prefix = streams["subject_prefix"]
    settings = ingest_settings(pg_url, streams)
    good = [usage_event(n) for n in range(20)]
    bad_type = encode_event(usage_event(99)).replace(b'"status":200', b'"status":"two hundred"')
    async with running_ingest(settings, pg_engine) as base:
        nc = await nats.connect(NATS_URL)
        try:
            js = nc.jetstream()
            for event in good[:10]:
                await js.publish(f"{prefix}.acme", encode_event(event), headers={"Nats-Msg-Id": event.id})
            await js.publish(f"{prefix}.acme", b"\x00not json at all", headers={"Nats-Msg-Id": "poison-1"})
            await js.publish(f"{prefix}.evil", bad_type, headers={"Nats-Msg-Id": "poison-2"})
            for event in good[10:]:
                await js.publish(f"{prefix}.acme", encode_event(event), headers={"Nats-Msg-Id": event.id})
            await wait_until(lambda: row_count(pg_engine) == 20, what="the good events")
            await wait_drained(streams)

            dead_stream = f"{streams['stream']}_DEADLETTER"
            sub = await js.pull_subscribe(
                f"{prefix}-deadletter.>", stream=dead_stream, config=ConsumerConfig(ack_wait=5)
            )
            dead = await sub.fetch(2, timeout=5)
            await sub.unsubscribe()
        finally:
            await nc.close()
        async with httpx.AsyncClient(base_url=base) as client:
            metrics = (await client.get("/metrics")).text
    assert sorted(m.subject for m in dead) == [f"{prefix}-deadletter.acme", f"{prefix}-deadletter.evil"]
    by_id = {(m.headers or {})["Switchyard-Original-Msg-Id"]: m for m in dead}
    assert by_id["poison-1"].data == b"\x00not json at all"
    assert "status" in (by_id["poison-2"].headers or {})["Switchyard-Dead-Letter-Reason"]
    assert metric(metrics, "switchyard_ingest_dead_lettered_total") == 2
    assert row_count(pg_engine) == 20
    # Also recorded in the table the control plane's API lists.
    with pg_engine.connect() as conn:
        letters = {letter.msg_id: letter for letter in list_dead_letters(conn)}
    assert set(letters) == {"poison-1", "poison-2"}
    assert letters["poison-1"].payload == b"\x00not json at all"
    assert "status" in letters["poison-2"].reason and letters["poison-2"].subject == f"{prefix}.evil"


async def test_database_errors_are_retried_not_acked(
    streams: dict[str, str], pg_url: str, tmp_path: Path
) -> None:
    """With the table missing every batch fails: nothing is acked, nothing is lost, and
    the events land once the schema exists."""
    engine = make_engine(pg_url)
    try:
        settings = ingest_settings(pg_url, streams)
        events = [usage_event(n) for n in range(40)]
        async with (
            running_ingest(settings, engine) as base,
            running_publisher(streams, tmp_path) as publisher,
        ):
            for event in events:
                publisher.publish_nowait(bus_message(streams["subject_prefix"], event))
            async with httpx.AsyncClient(base_url=base) as client:

                async def write_errors() -> float:
                    return metric((await client.get("/metrics")).text, "switchyard_ingest_write_errors_total")

                deadline = time.monotonic() + 15
                while await write_errors() < 1:
                    assert time.monotonic() < deadline, "the ingest never tried to write"
                    await asyncio.sleep(0.1)
                assert not await consumer_drained(streams)
                METADATA.create_all(engine, tables=USAGE_TABLES)
                await wait_until(lambda: row_count(engine) == 40, timeout=30, what="40 rows after recovery")
                await wait_drained(streams)
                assert (await client.get("/readyz")).status_code == 200
    finally:
        engine.dispose()
