"""NATS goes away under the publisher: events are spooled to disk and, once a server
is back on the same port and store, replayed in order and ingested exactly once."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from sqlalchemy import Engine

from tests.conftest import free_port

from . import test_usage_pipeline as pipeline
from .test_usage_pipeline import (
    bus_message,
    ingest_settings,
    row_count,
    running_ingest,
    running_publisher,
    usage_event,
    wait_until,
)

pytestmark = pytest.mark.integration

NATS_SERVER = "/usr/sbin/nats-server"

pg_engine = pipeline.pg_engine


class ThrowawayNats:
    """A private JetStream server; stopping and restarting it keeps its store."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.store = root / "jetstream"
        self.log = root / "nats-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [NATS_SERVER, "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def throwaway_nats(tmp_path: Path) -> Iterator[ThrowawayNats]:
    if not Path(NATS_SERVER).exists():
        pytest.skip(f"{NATS_SERVER} is not installed")
    server = ThrowawayNats(tmp_path)
    server.start()
    yield server
    server.stop()


async def _stream_msg_ids(url: str, stream: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        ids = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            ids.append((msg.headers or {})["Nats-Msg-Id"])
        return ids
    finally:
        await nc.close()


async def test_spooled_events_replay_in_order_after_outage(
    throwaway_nats: ThrowawayNats,
    nats_names: dict[str, str],
    pg_url: str,
    pg_engine: Engine,
    tmp_path: Path,
) -> None:
    prefix, stream = nats_names["subject_prefix"], nats_names["stream"]
    before = [usage_event(n) for n in range(10)]
    during = [usage_event(n) for n in range(10, 60)]
    after = [usage_event(n) for n in range(60, 70)]
    spool_dir = tmp_path / "spool"
    async with running_publisher(nats_names, spool_dir, url=throwaway_nats.url) as publisher:
        await wait_until(lambda: publisher.connected, what="publisher connected")
        for event in before:
            publisher.publish_nowait(bus_message(prefix, event))
        await wait_until(lambda: publisher.stats.published == 10, what="first events published")

        throwaway_nats.stop()
        for event in during:
            publisher.publish_nowait(bus_message(prefix, event))
        await wait_until(lambda: publisher.spool_pending == 50, what="events spooled")
        assert list(spool_dir.glob("seg-*.log")), "the spool is on disk"

        throwaway_nats.start()  # same port, same store
        for event in after:
            publisher.publish_nowait(bus_message(prefix, event))
        await wait_until(
            lambda: publisher.spool_pending == 0 and publisher.queued == 0, timeout=20, what="spool replayed"
        )
        await wait_until(lambda: publisher.stats.published + publisher.stats.replayed >= 70, what="all acked")
        assert publisher.stats.replayed >= 50
        assert publisher.stats.dropped == 0
    assert not list(spool_dir.glob("seg-*.log"))

    expected = [e.id for e in before + during + after]
    assert await _stream_msg_ids(throwaway_nats.url, stream) == expected

    settings = ingest_settings(pg_url, nats_names, nats_url=throwaway_nats.url)
    async with running_ingest(settings, pg_engine):
        await wait_until(lambda: row_count(pg_engine) >= 70, what="70 rows")
        await asyncio.sleep(0.5)
    assert row_count(pg_engine) == 70
