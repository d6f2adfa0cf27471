"""The breaker state machine (breakers.py) with an injected clock, on the in-memory store:
closed -> open -> half-open -> closed / open, the single probe, policy off, metrics."""

from __future__ import annotations

import pytest
from switchyard_common.breaker_state import BreakerState
from switchyard_common.proto.controlplane_pb2 import BreakerPolicy as BreakerPolicyMessage
from switchyard_dataplane.breakers import (
    BREAKERS_OFF,
    Admission,
    BreakerPolicy,
    BreakerRef,
    Breakers,
    LocalBreakerStore,
    after_failure,
    after_success,
    breaker_policy,
    open_count,
    take_probe,
)
from switchyard_dataplane.metrics import Metrics

POLICY = BreakerPolicy(failure_threshold=3, cooldown_seconds=10.0)
REF = BreakerRef.of("up", "epoch-1", "gpt-x")


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def breakers(clock: Clock, metrics: Metrics | None = None) -> Breakers:
    return Breakers(LocalBreakerStore(), metrics, clock=clock)


def transitions(metrics: Metrics, state: str) -> float:
    value = metrics.registry.get_sample_value(
        "switchyard_dataplane_breaker_transitions_total", {"provider": "up", "state": state}
    )
    return value or 0.0


async def test_consecutive_failures_open_the_breaker() -> None:
    clock, metrics = Clock(), Metrics()
    b = breakers(clock, metrics)
    for _ in range(2):
        await b.failed(REF, POLICY)
        assert b.admit(REF, POLICY) is Admission.CLOSED
    await b.failed(REF, POLICY)
    assert b.admit(REF, POLICY) is Admission.OPEN
    state = b.store.view()[REF.id]
    assert (state.state, state.failures, state.open_until) == ("open", 3, 1_010.0)
    assert transitions(metrics, "open") == 1
    assert open_count(b.store.view()) == 1


async def test_a_success_resets_the_failure_count() -> None:
    clock = Clock()
    b = breakers(clock)
    await b.failed(REF, POLICY)
    await b.failed(REF, POLICY)
    await b.succeeded(REF, POLICY)
    assert REF.id not in b.store.view()
    await b.failed(REF, POLICY)
    await b.failed(REF, POLICY)
    assert b.admit(REF, POLICY) is Admission.CLOSED  # 2 consecutive, not 4


async def test_cooldown_then_one_probe_that_closes_it() -> None:
    clock, metrics = Clock(), Metrics()
    b = breakers(clock, metrics)
    for _ in range(3):
        await b.failed(REF, POLICY)
    clock.now += 9.9
    assert b.admit(REF, POLICY) is Admission.OPEN
    clock.now += 0.2  # cooldown over
    assert b.admit(REF, POLICY) is Admission.PROBE
    assert await b.take_probe(REF, lease=5.0)
    assert b.store.view()[REF.id].state == "half_open"
    # Everyone else is kept out while the probe runs.
    assert b.admit(REF, POLICY) is Admission.OPEN
    assert not await b.store.acquire_probe(REF, clock.now, 5.0)
    await b.succeeded(REF, POLICY)
    assert b.admit(REF, POLICY) is Admission.CLOSED
    assert REF.id not in b.store.view()
    assert [transitions(metrics, s) for s in ("open", "half_open", "closed")] == [1, 1, 1]


async def test_a_failed_probe_reopens_for_a_fresh_cooldown() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        await b.failed(REF, POLICY)
    clock.now += 11
    assert await b.take_probe(REF, lease=5.0)
    await b.failed(REF, POLICY)
    state = b.store.view()[REF.id]
    assert state.state == "open"
    assert state.open_until == clock.now + 10.0
    assert b.admit(REF, POLICY) is Admission.OPEN


async def test_a_probe_whose_caller_vanished_is_released() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        await b.failed(REF, POLICY)
    clock.now += 11
    assert await b.take_probe(REF, lease=5.0)
    await b.release_probe(REF)
    clock.now += 0.5  # past the lost-race memo
    assert b.admit(REF, POLICY) is Admission.PROBE
    assert await b.take_probe(REF, lease=5.0)


async def test_an_expired_probe_lease_lets_another_caller_probe() -> None:
    clock = Clock()
    store = LocalBreakerStore()
    for _ in range(3):
        await store.failure(REF, POLICY, clock.now)
    clock.now += 11
    assert await store.acquire_probe(REF, clock.now, 5.0)
    assert not await store.acquire_probe(REF, clock.now + 4.9, 5.0)
    assert await store.acquire_probe(REF, clock.now + 5.1, 5.0)


async def test_a_straggler_success_does_not_close_an_open_breaker() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        await b.failed(REF, POLICY)
    await b.succeeded(REF, POLICY)  # a call that started before it opened
    assert b.admit(REF, POLICY) is Admission.OPEN


async def test_breakers_off_neither_count_nor_refuse() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(10):
        await b.failed(REF, BREAKERS_OFF)
    assert b.store.view() == {}
    for _ in range(3):
        await b.failed(REF, POLICY)
    # An organization without breakers ignores the one other organizations opened.
    assert b.admit(REF, BREAKERS_OFF) is Admission.CLOSED
    assert b.admit(REF, POLICY) is Admission.OPEN


async def test_a_new_epoch_is_a_fresh_breaker() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        await b.failed(REF, POLICY)
    fresh = BreakerRef.of("up", "epoch-2", "gpt-x")
    assert b.admit(REF, POLICY) is Admission.OPEN
    assert b.admit(fresh, POLICY) is Admission.CLOSED


def test_pure_transitions() -> None:
    open_state = after_failure(None, REF, BreakerPolicy(failure_threshold=1, cooldown_seconds=5), 100.0)
    assert (open_state.state, open_state.open_until) == ("open", 105.0)
    assert after_success(open_state, 101.0) is open_state
    assert after_success(open_state, 106.0) is None
    assert take_probe(open_state, 104.0, 1.0) is None
    probing = take_probe(open_state, 105.0, 1.0)
    assert probing is not None and probing.state == "half_open" and probing.probe_until == 106.0
    assert take_probe(probing, 105.5, 1.0) is None
    closed = BreakerState("up", "e", "m", "closed", 1, 0.0)
    assert take_probe(closed, 0.0, 1.0) is None


@pytest.mark.parametrize(
    ("threshold", "cooldown", "expected"),
    [(0, 30.0, BREAKERS_OFF), (4, 0.0, BreakerPolicy(4, 30.0)), (2, 7.5, BreakerPolicy(2, 7.5))],
)
def test_policy_from_the_snapshot(threshold: int, cooldown: float, expected: BreakerPolicy) -> None:
    message = BreakerPolicyMessage(failure_threshold=threshold, cooldown_seconds=cooldown)
    assert breaker_policy(message) == expected


def test_open_breakers_gauge_reads_the_view() -> None:
    store = LocalBreakerStore()
    metrics = Metrics()
    metrics.open_breakers.set_function(lambda: open_count(store.view()))
    store.put(REF.id, BreakerState("up", "e", "m", "open", 3, 2.0))
    assert metrics.registry.get_sample_value("switchyard_dataplane_open_breakers") == 1.0
