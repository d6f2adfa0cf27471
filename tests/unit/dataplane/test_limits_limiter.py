"""The limiter contract, run against both limiters: the Redis one (real Redis, unique
prefix) and the in-memory one. Fixed clocks (Plan.now_ms): no timing assertions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from switchyard_dataplane.admission.limiter import RedisLimiter
from switchyard_dataplane.admission.limiter_local import LocalLimiter
from switchyard_dataplane.admission.plan import (
    BudgetCharge,
    ConcurrencySlot,
    Plan,
    RateCharge,
    Settlement,
)

from tests.unit.dataplane.governed import redis_link

BUCKET_MS = 1000
NBUCKETS = 60  # a 60 s window
LEASE_MS = 30_000
T0 = 1_800_000_000_000  # a fixed "now" (ms), bucket-aligned

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["redis", "local"])
async def limiter(request: pytest.FixtureRequest, services: None) -> AsyncIterator[Any]:
    if request.param == "local":
        yield LocalLimiter(bucket_ms=BUCKET_MS, nbuckets=NBUCKETS, lease_ms=LEASE_MS)
        return
    async with redis_link() as link:
        limiter = RedisLimiter(link, bucket_ms=BUCKET_MS, nbuckets=NBUCKETS, lease_ms=LEASE_MS)
        limiter.test_prefix = link.prefix  # type: ignore[attr-defined]
        yield limiter


def _key(limiter: Any, name: str) -> str:
    return getattr(limiter, "test_prefix", "local:") + name


_ids = iter(range(1_000_000))


def rate_plan(limiter: Any, *rules: tuple[str, int, int], now: int = T0, enforce: bool = True) -> Plan:
    """Rules: (counter name, limit, amount)."""
    return Plan(
        call_id=f"c{next(_ids)}",
        rates=[RateCharge(f"{n}", _key(limiter, n), limit, amount, enforce) for n, limit, amount in rules],
        now_ms=now,
    )


async def test_rpm_admits_the_limit_then_refuses_with_the_time_until_a_slot_frees(limiter: Any) -> None:
    for i in range(5):
        verdict = await limiter.admit(rate_plan(limiter, ("key.rpm", 5, 1), now=T0 + i * 2000))
        assert verdict.admitted, i
    refused = await limiter.admit(rate_plan(limiter, ("key.rpm", 5, 1), now=T0 + 10_500))
    assert not refused.admitted
    assert refused.refused == 1
    assert refused.used == [5]
    # The oldest request (bucket at T0) leaves the 60 s window at T0 + 60 s.
    assert refused.retry_ms == 60_000 - 10_500
    # Just before that it is still refused; at that moment it is admitted again.
    assert not (await limiter.admit(rate_plan(limiter, ("key.rpm", 5, 1), now=T0 + 59_999))).admitted
    assert (await limiter.admit(rate_plan(limiter, ("key.rpm", 5, 1), now=T0 + 60_000))).admitted


async def test_refusal_is_all_or_nothing(limiter: Any) -> None:
    assert (await limiter.admit(rate_plan(limiter, ("org.rpm", 1, 1)))).admitted
    # key.rpm would admit, org.rpm refuses: nothing is charged.
    verdict = await limiter.admit(rate_plan(limiter, ("key.rpm", 2, 1), ("org.rpm", 1, 1)))
    assert not verdict.admitted and verdict.refused == 2
    verdict = await limiter.admit(rate_plan(limiter, ("key.rpm", 2, 1)))
    assert verdict.admitted and verdict.used == [0]


async def test_tokens_count_the_amount_and_a_call_over_the_limit_can_never_pass(limiter: Any) -> None:
    assert (await limiter.admit(rate_plan(limiter, ("key.tpm", 1000, 600)))).admitted
    verdict = await limiter.admit(rate_plan(limiter, ("key.tpm", 1000, 500)))
    assert not verdict.admitted and verdict.used == [600] and verdict.retry_ms == 60_000
    assert (await limiter.admit(rate_plan(limiter, ("key.tpm", 1000, 400)))).admitted
    too_big = await limiter.admit(rate_plan(limiter, ("key.tpm", 1000, 1001), now=T0 + 70_000))
    assert not too_big.admitted and too_big.retry_ms == -1


async def test_settlement_corrects_tokens_in_the_admitted_bucket(limiter: Any) -> None:
    plan = rate_plan(limiter, ("key.tpm", 1000, 900))
    verdict = await limiter.admit(plan)
    assert verdict.admitted
    # The call really used 100 tokens: 800 come back.
    await limiter.settle(plan, verdict, Settlement(token_deltas=[-800], costs_nano=[]))
    after = await limiter.admit(rate_plan(limiter, ("key.tpm", 1000, 850), now=T0 + 1000))
    assert after.admitted and after.used == [100]


async def test_shadow_rules_admit_count_and_report(limiter: Any) -> None:
    plan = rate_plan(limiter, ("key.rpm", 1, 1), enforce=False)
    assert (await limiter.admit(plan)).shadow == []
    verdict = await limiter.admit(rate_plan(limiter, ("key.rpm", 1, 1), enforce=False))
    assert verdict.admitted and verdict.shadow == [1] and verdict.used == [1]


async def test_concurrency_slots_are_released_by_settlement_and_by_lease_expiry(limiter: Any) -> None:
    def plan(now: int = T0) -> Plan:
        return Plan(
            call_id=f"c{next(_ids)}",
            slots=[ConcurrencySlot("key.concurrency", _key(limiter, "cc"), 2)],
            now_ms=now,
        )

    first, second = plan(), plan()
    v1 = await limiter.admit(first)
    v2 = await limiter.admit(second)
    assert v1.admitted and v2.admitted
    third = await limiter.admit(plan())
    assert not third.admitted and third.refused == 1
    await limiter.settle(first, v1, Settlement(token_deltas=[], costs_nano=[]))
    assert (await limiter.admit(plan())).admitted
    assert not (await limiter.admit(plan())).admitted
    # A replica that died holding slots: they lapse with the lease.
    assert (await limiter.admit(plan(now=T0 + LEASE_MS + 1))).admitted


def budget_plan(limiter: Any, reserve: int, *, limit: int = 1000, now: int = T0) -> Plan:
    return Plan(
        call_id=f"c{next(_ids)}",
        budgets=[BudgetCharge("key.budget.day", _key(limiter, "bud"), limit, reserve, 0, "USD")],
        now_ms=now,
    )


async def test_budget_reserves_worst_case_and_settles_the_real_cost(limiter: Any) -> None:
    plans = [budget_plan(limiter, 300) for _ in range(4)]
    verdicts = [await limiter.admit(p) for p in plans]
    assert [v.admitted for v in verdicts] == [True, True, True, False]
    assert verdicts[3].budget_used == [900] and verdicts[3].retry_ms == -1  # no period end
    # The first call cost 50, not 300: 250 come back.
    await limiter.settle(plans[0], verdicts[0], Settlement(token_deltas=[], costs_nano=[50]))
    retry = budget_plan(limiter, 300)
    v = await limiter.admit(retry)
    assert v.admitted and v.budget_used == [650]
    # Settling twice never releases a reservation twice.
    await limiter.settle(plans[1], verdicts[1], Settlement(token_deltas=[], costs_nano=[300]))
    await limiter.settle(plans[1], verdicts[1], Settlement(token_deltas=[], costs_nano=[0]))
    assert (await limiter.admit(budget_plan(limiter, 0))).budget_used == [950]


async def test_budget_spent_refuses_even_free_calls_and_reservations_lapse(limiter: Any) -> None:
    plan = budget_plan(limiter, 1000)
    assert (await limiter.admit(plan)).admitted
    assert not (await limiter.admit(budget_plan(limiter, 0))).admitted
    # The call's replica died: its reservation lapses with the lease.
    later = await limiter.admit(budget_plan(limiter, 1000, now=T0 + LEASE_MS + 1))
    assert later.admitted and later.budget_used == [0]


async def test_two_redis_limiters_share_one_budget_and_admit_no_more_than_it_allows(services: None) -> None:
    async with redis_link() as a, redis_link() as b:
        b.prefix = a.prefix  # two replicas, one Redis, one prefix
        limiters = [
            RedisLimiter(link, bucket_ms=BUCKET_MS, nbuckets=NBUCKETS, lease_ms=LEASE_MS) for link in (a, b)
        ]

        async def one(i: int) -> bool:
            limiter = limiters[i % 2]
            plan = Plan(
                call_id=f"call-{i}",
                rates=[RateCharge("key.rpm", a.prefix + "rpm", 60, 1)],
                budgets=[BudgetCharge("key.budget.day", a.prefix + "bud", 10_000, 1000, 0, "USD")],
                now_ms=T0,
            )
            return (await limiter.admit(plan)).admitted

        results = await asyncio.gather(*(one(i) for i in range(50)))
        assert sum(results) == 10  # budget for exactly 10 worst-case calls

        async def rpm_only(i: int) -> bool:
            plan = Plan(
                call_id=f"r-{i}", rates=[RateCharge("key.rpm", a.prefix + "rpm2", 60, 1)], now_ms=T0 + i
            )
            return (await limiters[i % 2].admit(plan)).admitted

        results = await asyncio.gather(*(rpm_only(i) for i in range(150)))
        assert sum(results) == 60
