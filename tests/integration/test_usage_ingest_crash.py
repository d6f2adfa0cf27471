"""The ingest process is SIGKILLed mid-stream and restarted: every event lands once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from switchyard_common.usage_store import usage_events

from tests.conftest import NATS_URL, free_port

from . import test_usage_pipeline as pipeline
from .test_usage_pipeline import (
    bus_message,
    row_count,
    running_publisher,
    usage_event,
    wait_drained,
    wait_until,
)

pytestmark = pytest.mark.integration

# Fixtures shared with the pipeline tests.
streams = pipeline.streams
pg_engine = pipeline.pg_engine


class IngestProcess:
    """`python -m switchyard_ingest` configured through SWITCHYARD_* variables."""

    def __init__(self, pg_url: str, names: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "SWITCHYARD_DATABASE_URL": pg_url,
            "SWITCHYARD_NATS_URL": NATS_URL,
            "SWITCHYARD_NATS_STREAM": names["stream"],
            "SWITCHYARD_USAGE_SUBJECT_PREFIX": names["subject_prefix"],
            "SWITCHYARD_NATS_DURABLE": names["durable"],
            "SWITCHYARD_NATS_ACK_WAIT": "2",
            "SWITCHYARD_INGEST_PORT": str(self.port),
            "SWITCHYARD_BATCH_SIZE": "25",
            "SWITCHYARD_BATCH_TIMEOUT": "0.1",
        }
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "switchyard_ingest"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, "ingest exited"
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("ingest not ready")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(10)
        self.log.close()
        return code


@pytest.fixture
def ingest_procs() -> Iterator[list[IngestProcess]]:
    procs: list[IngestProcess] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.log.close()


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    streams: dict[str, str],
    pg_url: str,
    pg_engine: Engine,
    tmp_path: Path,
    ingest_procs: list[IngestProcess],
) -> None:
    total = 1500
    prefix = streams["subject_prefix"]
    events = [usage_event(n) for n in range(total)]
    log_path = tmp_path / "ingest.log"
    first = IngestProcess(pg_url, streams, log_path)
    ingest_procs.append(first)
    await first.wait_ready()

    async with running_publisher(streams, tmp_path / "spool") as publisher:

        async def produce() -> None:
            for start in range(0, total, 25):
                for event in events[start : start + 25]:
                    publisher.publish_nowait(bus_message(prefix, event))
                await asyncio.sleep(0.02)

        producer = asyncio.create_task(produce())
        await wait_until(lambda: row_count(pg_engine) >= 150, what="the first rows")
        first.kill()
        rows_at_kill = row_count(pg_engine)
        assert rows_at_kill < total, "the kill must happen mid-stream"

        second = IngestProcess(pg_url, streams, log_path)
        ingest_procs.append(second)
        await second.wait_ready()
        await producer
        await wait_until(lambda: row_count(pg_engine) >= total, timeout=30, what=f"{total} rows")
        await wait_drained(streams)
        assert publisher.stats.dropped == 0
    assert second.stop() == 0  # SIGTERM: clean shutdown

    assert row_count(pg_engine) == total
    with pg_engine.connect() as conn:
        stored = set(conn.scalars(select(usage_events.c.id)).all())
    assert stored == {e.id for e in events}
