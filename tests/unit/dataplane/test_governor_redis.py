"""Admission with Redis: replicas share counters, budget state is readable by the control
plane, and Redis failures follow the org's on_redis_failure policy without hanging."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from switchyard_common.budget_state import read_budget_usage
from switchyard_common.secrets import hash_api_key
from switchyard_dataplane.admission.governor import Governor
from switchyard_dataplane.breaker_redis import RedisBreakerStore
from switchyard_dataplane.breakers import Breakers
from switchyard_dataplane.redis_link import RedisLink

from tests.conftest import free_port
from tests.unit.dataplane.conftest import AUTH, KEY, chat_body, make_snapshot
from tests.unit.dataplane.governed import governed_gateway, ok_upstream, redis_link, throwaway_redis
from tests.unit.dataplane.test_limits_redis_link import silent_server

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("services")]

STRICT = "gk_" + "s" * 40


def limited_snapshot(rpm: int = 0, *, on_redis_failure: str = "", budget: float = 0.0):  # type: ignore[no-untyped-def]
    snap = make_snapshot()
    if rpm:
        snap.keys[0].limits.rpm = rpm
    if budget:
        snap.keys[0].limits.budgets.add(amount=budget, currency="USD", period="month")
    if on_redis_failure:
        snap.organizations[0].policy.on_redis_failure = on_redis_failure
    return snap


async def test_two_replicas_on_one_redis_admit_the_rate_once_not_twice() -> None:
    async with redis_link() as a, redis_link() as b:
        b.prefix = a.prefix
        snap = limited_snapshot(5)
        async with (
            governed_gateway(snap, Governor(link=a)) as gw1,
            governed_gateway(snap, Governor(link=b)) as gw2,
        ):
            statuses = []
            for i in range(12):
                gw = gw1 if i % 2 else gw2
                statuses.append(
                    (
                        await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
                    ).status_code
                )
            assert statuses.count(200) == 5
            assert statuses[5:] == [429] * 7
            assert gw1.governor.local._rates == {}  # Redis decided, not the local fallback


async def test_budget_use_is_settled_in_redis_and_readable_by_the_control_plane() -> None:
    async with redis_link() as link:
        governor = Governor(link=link)
        async with governed_gateway(
            limited_snapshot(budget=5.0), governor, upstream=ok_upstream(7, 10)
        ) as gw:
            for _ in range(3):
                assert (
                    await gw.client.post(
                        "/v1/chat/completions", content=chat_body(max_tokens=20), headers=AUTH
                    )
                ).status_code == 200
            await governor.drain()
            snap_budget = (
                make_snapshot().keys[0].limits.budgets.add(amount=5.0, currency="USD", period="month")
            )
            [usage] = await read_budget_usage(
                link.client, link.prefix, "key", "key-1", [snap_budget], time.time()
            )
            assert usage.spent == pytest.approx(sum(e.cost for e in gw.events), abs=1e-9)
            assert usage.spent == pytest.approx(3 * 0.000114)
            assert usage.reserved == 0
            assert usage.remaining == pytest.approx(5.0 - usage.spent)
            assert usage.period_start is not None and usage.period_start.day == 1


async def test_keys_without_limits_never_touch_redis() -> None:
    dead = RedisLink(f"redis://127.0.0.1:{free_port()}/0", "x:")
    async with governed_gateway(make_snapshot(), Governor(link=dead)) as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 200
        assert dead.healthy  # never tried
    await dead.close()


async def test_unreachable_redis_fails_open_to_the_local_limiter_and_readyz_says_degraded() -> None:
    dead = RedisLink(f"redis://127.0.0.1:{free_port()}/0", "x:")
    governor = Governor(link=dead)
    async with governed_gateway(limited_snapshot(2, on_redis_failure="open"), governor) as gw:
        # Never hangs: the module's timeout would fail the test.
        statuses = [
            (await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]  # the local limiter kept enforcing
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["redis"] == "degraded"
        metrics = governor.metrics.render().decode()
        assert "switchyard_dataplane_redis_up 0.0" in metrics
        assert 'switchyard_dataplane_limiter_fallbacks_total{outcome="local"} 3.0' in metrics


async def test_unreachable_redis_fails_closed_with_503_in_the_callers_protocol() -> None:
    dead = RedisLink(f"redis://127.0.0.1:{free_port()}/0", "x:")
    async with governed_gateway(limited_snapshot(100, on_redis_failure="closed"), Governor(link=dead)) as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "limits_unavailable"
        body = b'{"model":"chat","max_tokens":5,"messages":[{"role":"user","content":"x"}]}'
        response = await gw.client.post(
            "/v1/messages", content=body, headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        )
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "overloaded_error"
        assert gw.events[-1].status == 503


async def test_redis_killed_mid_test_then_back() -> None:
    with throwaway_redis() as server:
        link = RedisLink(server.url, "kill:", backoff_initial=0.05, backoff_max=0.05)
        governor = Governor(link=link)
        async with governed_gateway(limited_snapshot(3, on_redis_failure="open"), governor) as gw:

            async def call() -> int:
                return (
                    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
                ).status_code

            assert [await call(), await call()] == [200, 200]  # counted in Redis
            server.stop()
            # Redis gone: the local limiter starts from zero (approximate, per replica).
            assert [await call() for _ in range(4)] == [200, 200, 200, 429]
            assert (await gw.client.get("/readyz")).json()["redis"] == "degraded"
            server.start()  # empty: a restarted Redis without persistence
            deadline = time.monotonic() + 10
            while not link.healthy and time.monotonic() < deadline:
                await link.ping()
            assert (await gw.client.get("/readyz")).json()["redis"] == "up"
            assert [await call() for _ in range(4)] == [200, 200, 200, 429]
        await link.close()


async def test_target_quota_overflows_to_the_next_target() -> None:
    snap = make_snapshot(
        base_urls={"up": "http://upstream.test/v1", "up2": "http://second.test/v1"},
        targets=[("up", "gpt-up", 0), ("up2", "gpt-2", 1)],
    )
    snap.models[0].targets[0].limits.rpm = 1
    async with redis_link() as link, governed_gateway(snap, Governor(link=link)) as gw:
        for _ in range(3):
            response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
            assert response.status_code == 200
        assert [e.provider for e in gw.events] == ["up", "up2", "up2"]
        index = gw.holder.current
        assert index is not None
        target = index.models["chat"].targets[0]
        assert target.limits.rpm == 1
        # The quota is shared by replicas: a second governor on the same prefix sees it.
        other = Governor(link=link)
        from switchyard_dataplane.usage_events import CallRecord

        record = CallRecord(next(iter(index.keys.values())), 0.0, time.time(), None)
        assert not await other.target_admit(target, record)


async def test_a_blackholed_redis_bounds_every_call_and_readyz() -> None:
    """Redis that accepts connections and never answers (a blackholed or frozen host,
    not a refused port): limits, budgets and breaker writes each wait at most the link's
    deadline, then the org's policy decides; nothing hangs, even under concurrency."""
    with silent_server() as port:
        link = RedisLink(f"redis://127.0.0.1:{port}/0", "bh:", timeout=0.2)
        governor = Governor(link=link)
        store = RedisBreakerStore(link, interval=0.05)
        snap = limited_snapshot(100, on_redis_failure="open", budget=5.0)
        snap.organizations[0].policy.breaker.failure_threshold = 3
        closed = snap.organizations.add(id="org-2", name="strict")
        closed.policy.on_redis_failure = "closed"
        strict = snap.keys.add()
        strict.CopyFrom(snap.keys[0])
        strict.id, strict.name, strict.org_id = "key-2", "strict", "org-2"
        strict.key_hash = hash_api_key(STRICT)

        def failing(request: httpx.Request) -> httpx.Response:
            return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})

        async with governed_gateway(
            snap, governor, upstream=failing, breakers=Breakers(store, governor.metrics)
        ) as gw:

            async def timed(key: str) -> tuple[int, float]:
                started = time.monotonic()
                response = await gw.client.post(
                    "/v1/chat/completions", content=chat_body(), headers={"Authorization": f"Bearer {key}"}
                )
                return response.status_code, time.monotonic() - started

            results = await asyncio.wait_for(
                asyncio.gather(*(timed(KEY if i % 2 else STRICT) for i in range(20))), 10
            )
            # Fail-open calls went on to the upstream (its 500 passed back); fail-closed: 503.
            assert sorted({status for status, _ in results}) == [500, 503], results
            assert max(took for _, took in results) < 2.0, results
            # The breaker writes fell back to the local store: it opened after 3 failures.
            assert store.local.view(), "breaker failures were lost"
            started = time.monotonic()
            ready = await gw.client.get("/readyz")
            assert time.monotonic() - started < 2.0
            assert ready.status_code == 200 and ready.json()["redis"] == "degraded"
        await link.close()
