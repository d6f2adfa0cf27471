"""Nothing lost, nothing doubled: calls through the real data plane, control plane and
ingest processes while a dependency fails, then exact counts. After each scenario the
ledger has one row per call, the per-minute rollups equal the ledger, and the
time-series store (a throwaway VictoriaMetrics) equals the ledger too."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import NATS_URL, pg_database
from tests.support.ingest_stack import IngestStack, ingest_stack
from tests.support.throwaway import ThrowawayNats, ThrowawayPostgres, ThrowawayVictoriaMetrics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def vm() -> Iterator[ThrowawayVictoriaMetrics]:
    server = ThrowawayVictoriaMetrics().start()
    yield server
    server.close()


@pytest.fixture
async def stack(tmp_path: Path, vm: ThrowawayVictoriaMetrics) -> AsyncIterator[IngestStack]:
    """Machine Postgres (a fresh database) and NATS, throwaway time-series store."""
    with pg_database() as url:
        async with ingest_stack(tmp_path, pg_url=url, nats_url=NATS_URL, vm=vm) as stack:
            yield stack


async def test_ingest_killed_mid_batch_and_restarted(stack: IngestStack) -> None:
    stack.start_dataplane()
    first = stack.start_ingest()
    load = asyncio.create_task(stack.calls(600, concurrency=6, pause=0.01))
    await stack.wait_for(lambda: stack.ledger_count() >= 100, 60, "the first rows")
    first.kill(signal.SIGKILL)
    at_kill = stack.ledger_count()
    stack.start_ingest()
    answered = await load
    assert at_kill < answered == 600, "the kill must happen mid-load"
    await stack.assert_consistent(600)


async def test_two_replicas_share_one_durable_consumer(stack: IngestStack) -> None:
    stack.start_dataplane()
    replicas = [stack.start_ingest(), stack.start_ingest()]
    answered = await stack.calls(800, concurrency=8)
    await stack.assert_consistent(answered)
    ingested = [stack.ingest_metric(p, "switchyard_ingest_events_ingested_total") for p in replicas]
    assert sum(ingested) == answered and all(n > 0 for n in ingested), ingested


async def test_timeseries_store_unreachable_then_back(
    stack: IngestStack, vm: ThrowawayVictoriaMetrics
) -> None:
    stack.start_dataplane()
    ingest = stack.start_ingest()
    before = await stack.calls(100)
    await stack.assert_consistent(before)

    vm.stop()
    during = await stack.calls(150)
    # The events wait in JetStream: batches are rolled back while the store is down.
    await stack.wait_for(
        lambda: stack.ingest_metric(ingest, "switchyard_ingest_timeseries_errors_total") >= 2,
        30,
        "failed time-series writes",
    )
    await asyncio.sleep(1.0)
    assert stack.ledger_count() == before

    vm.start()
    after = await stack.calls(50)
    await stack.assert_consistent(before + during + after, timeout=90)


async def test_nats_down_events_spool_across_a_dataplane_restart(
    tmp_path: Path, vm: ThrowawayVictoriaMetrics
) -> None:
    nats_server = ThrowawayNats(tmp_path / "nats").start()
    try:
        with pg_database() as url:
            async with ingest_stack(tmp_path, pg_url=url, nats_url=nats_server.url, vm=vm) as stack:
                stack.start_dataplane()
                stack.start_ingest()
                before = await stack.calls(100)
                await stack.assert_consistent(before)

                nats_server.stop()
                during = await stack.calls(120)
                assert stack.dataplane is not None
                stack.dataplane.stop()  # SIGTERM; the spool stays on disk
                stack.start_dataplane()
                during += await stack.calls(80)
                await asyncio.sleep(1.0)
                assert stack.ledger_count() == before  # nothing can arrive while NATS is down

                nats_server.start()
                await stack.assert_consistent(before + during, timeout=120)
    finally:
        nats_server.close()


async def test_postgres_stopped_and_restarted_while_ingest_runs(
    tmp_path: Path, vm: ThrowawayVictoriaMetrics
) -> None:
    postgres = ThrowawayPostgres().start()
    try:
        url = postgres.create_database("switchyard")
        async with ingest_stack(tmp_path, pg_url=url, nats_url=NATS_URL, vm=vm) as stack:
            stack.start_dataplane()
            ingest = stack.start_ingest()
            before = await stack.calls(100)
            await stack.assert_consistent(before)

            load = asyncio.create_task(stack.calls(400, concurrency=4, pause=0.02))
            await stack.wait_for(lambda: stack.ledger_count() > before + 50, 60, "rows under load")
            postgres.stop(signal.SIGKILL)  # the database host dies mid-load
            await stack.wait_for(
                lambda: stack.ingest_metric(ingest, "switchyard_ingest_write_errors_total") >= 1,
                30,
                "failed batches",
            )
            await asyncio.sleep(2.0)
            postgres.start()
            during = await load
            await stack.assert_consistent(before + during, timeout=120)
    finally:
        postgres.close()
