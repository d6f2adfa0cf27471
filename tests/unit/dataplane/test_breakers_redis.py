"""Breaker state in Redis (breaker_redis.py) against the machine's real Redis with a unique
prefix: two replicas agree, one probe only, the control plane's reader, epochs; and the
local fallback when Redis is unreachable (a closed port; a throwaway redis-server killed
mid-test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from switchyard_common.breaker_state import breaker_key, breaker_set_key, read_breakers
from switchyard_dataplane.breaker_redis import RedisBreakerStore
from switchyard_dataplane.breakers import Admission, BreakerPolicy, BreakerRef, Breakers
from switchyard_dataplane.redis_link import RedisLink

from tests.conftest import REDIS_URL, free_port, unique_name
from tests.support.redis_server import ThrowawayRedis

pytestmark = [pytest.mark.usefixtures("services"), pytest.mark.timeout(60)]

POLICY = BreakerPolicy(failure_threshold=2, cooldown_seconds=5.0)
REF = BreakerRef.of("up", "ep1", "model:with:colons")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def replicas() -> AsyncIterator[Callable[[], RedisBreakerStore]]:
    """Stores of independent 'replicas' (each its own RedisLink) sharing one prefix."""
    prefix = unique_name("sy_brk") + ":"
    links: list[RedisLink] = []

    def make() -> RedisBreakerStore:
        link = RedisLink(REDIS_URL, prefix, timeout=1.0)
        links.append(link)
        return RedisBreakerStore(link, interval=0.05)

    yield make
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    for link in links:
        await link.close()


async def test_failures_on_one_replica_open_the_breaker_on_both(
    replicas: Callable[[], RedisBreakerStore],
) -> None:
    clock = Clock()
    a, b = replicas(), replicas()
    await a.refresh()
    await b.refresh()
    one, two = Breakers(a, clock=clock), Breakers(b, clock=clock)
    await one.failed(REF, POLICY)
    await b.refresh()
    assert b.view()[REF.id].failures == 1
    await two.failed(REF, POLICY)  # consecutive across replicas: the count is shared
    assert two.admit(REF, POLICY) is Admission.OPEN  # merged from the script's answer
    assert one.admit(REF, POLICY) is Admission.CLOSED  # a has not refreshed yet
    await a.refresh()
    assert one.admit(REF, POLICY) is Admission.OPEN
    state = a.view()[REF.id]
    assert (state.provider, state.epoch, state.upstream_model) == ("up", "ep1", "model:with:colons")
    assert state.open_until == pytest.approx(clock.now + 5.0, abs=0.002)


async def test_only_one_replica_takes_the_half_open_probe(
    replicas: Callable[[], RedisBreakerStore],
) -> None:
    clock = Clock()
    stores = [replicas() for _ in range(4)]
    for store in stores:
        await store.refresh()
    for _ in range(2):
        await stores[0].failure(REF, POLICY, clock.now)
    clock.now += 6  # cooldown over
    for store in stores:
        await store.refresh()
    takers = await asyncio.gather(*(s.acquire_probe(REF, clock.now, 3.0) for s in stores))
    assert sorted(takers) == [False, False, False, True]
    winner = stores[takers.index(True)]
    await stores[1].refresh()
    assert stores[1].view()[REF.id].state == "half_open"
    # The probe succeeds: closed (and forgotten) everywhere.
    transition = await winner.success(REF, clock.now + 0.5)
    assert (transition.before, transition.after) == ("half_open", "closed")
    await stores[1].refresh()
    assert REF.id not in stores[1].view()


async def test_a_failed_probe_reopens_and_the_reader_sees_it(
    replicas: Callable[[], RedisBreakerStore],
) -> None:
    clock = Clock()
    store = replicas()
    await store.refresh()
    for _ in range(2):
        await store.failure(REF, POLICY, clock.now)
    clock.now += 6
    assert await store.acquire_probe(REF, clock.now, 3.0)
    transition = await store.failure(REF, POLICY, clock.now)
    assert (transition.before, transition.after) == ("half_open", "open")
    other = BreakerRef.of("up", "ep1", "other-model")
    await store.failure(other, POLICY, clock.now)

    prefix = store._prefix  # noqa: SLF001 - the test checks the stored layout
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        states = await read_breakers(client, prefix)
        assert await client.sismember(
            breaker_set_key(prefix), breaker_key(prefix, "up", "ep1", "other-model")
        )
    finally:
        await client.aclose()
    by_model = {s.upstream_model: s for s in states}
    assert by_model["model:with:colons"].state == "open"
    assert by_model["model:with:colons"].open_until == pytest.approx(clock.now + 5.0, abs=0.002)
    assert by_model["model:with:colons"].effective(clock.now + 6) == "half_open"
    assert (by_model["other-model"].state, by_model["other-model"].failures) == ("closed", 1)
    assert by_model["other-model"].as_dict(clock.now)["state"] == "closed"


async def test_a_new_epoch_starts_afresh(replicas: Callable[[], RedisBreakerStore]) -> None:
    clock = Clock()
    store = replicas()
    await store.refresh()
    breakers = Breakers(store, clock=clock)
    for _ in range(2):
        await breakers.failed(REF, POLICY)
    assert breakers.admit(REF, POLICY) is Admission.OPEN
    reset = BreakerRef.of("up", "ep2", REF.upstream_model)
    assert breakers.admit(reset, POLICY) is Admission.CLOSED
    await breakers.failed(reset, POLICY)
    await store.refresh()
    assert store.view()[reset.id].failures == 1


async def test_unreachable_redis_falls_back_to_the_local_store() -> None:
    port = free_port()  # nothing listens there
    link = RedisLink(f"redis://127.0.0.1:{port}/0", "sy_x:", timeout=0.2)
    store = RedisBreakerStore(link, interval=0.05)
    clock = Clock()
    breakers = Breakers(store, clock=clock)
    try:
        assert not await asyncio.wait_for(store.refresh(), 5)
        assert not link.healthy
        for _ in range(2):
            await asyncio.wait_for(breakers.failed(REF, POLICY), 5)
        assert breakers.admit(REF, POLICY) is Admission.OPEN
        assert store.local.view()[REF.id].state == "open"
        clock.now += 6
        assert breakers.admit(REF, POLICY) is Admission.PROBE
        assert await asyncio.wait_for(breakers.take_probe(REF, 2.0), 5)
        await asyncio.wait_for(breakers.succeeded(REF, POLICY), 5)
        assert breakers.admit(REF, POLICY) is Admission.CLOSED
    finally:
        await link.close()


async def test_redis_killed_mid_test_keeps_the_breakers_working(tmp_path: Path) -> None:
    server = ThrowawayRedis(free_port(), tmp_path / "redis").start()
    link = RedisLink(server.url, "sy_kill:", timeout=0.2, backoff_initial=0.05, backoff_max=0.1)
    store = RedisBreakerStore(link, interval=0.05)
    clock = Clock()
    breakers = Breakers(store, clock=clock)
    try:
        assert await store.refresh()
        for _ in range(2):
            await breakers.failed(REF, POLICY)
        await store.refresh()
        assert store.remote and breakers.admit(REF, POLICY) is Admission.OPEN
        server.kill()
        assert not await asyncio.wait_for(store.refresh(), 5)
        # The local store carries on from what Redis showed last: still open.
        assert not store.remote
        assert breakers.admit(REF, POLICY) is Admission.OPEN
        other = BreakerRef.of("up", "ep1", "second")
        for _ in range(2):
            await asyncio.wait_for(breakers.failed(other, POLICY), 5)
        assert breakers.admit(other, POLICY) is Admission.OPEN
        server.start()  # back, empty (no persistence)
        await asyncio.sleep(0.15)  # past the link's backoff
        assert await store.refresh()
        assert store.remote
        assert breakers.admit(REF, POLICY) is Admission.CLOSED  # Redis's state wins again
    finally:
        server.kill()
        await link.close()


async def test_a_redis_answering_errors_neither_fails_the_call_nor_loses_the_failure(tmp_path: Path) -> None:
    """A Redis that answers but refuses writes (here: out of memory; READONLY after a
    failover is the same) must not turn an attempt's bookkeeping into a 500."""
    server = ThrowawayRedis(free_port(), tmp_path / "redis").start()
    link = RedisLink(server.url, "sy_oom:", timeout=1.0)
    store = RedisBreakerStore(link, interval=0.05)
    breakers = Breakers(store, clock=Clock())
    admin = aioredis.Redis.from_url(server.url)
    try:
        assert await store.refresh()
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")
        for _ in range(2):
            await asyncio.wait_for(breakers.failed(REF, POLICY), 5)  # raised ResponseError before
        assert store.local.view()[REF.id].state == "open"  # counted locally instead
        assert await asyncio.wait_for(breakers.take_probe(REF, 2.0), 5) in (True, False)
        await asyncio.wait_for(breakers.release_probe(REF), 5)
        assert link.healthy  # an error answer is not an outage
    finally:
        await admin.aclose()
        server.kill()
        await link.close()
