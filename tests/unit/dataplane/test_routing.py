"""Routing strategies (routing.py) over a real snapshot index: each strategy's choice with
an injected random source and clock, provider assignment per organization, disabled
providers, model-level override, and validation of the strategy names."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
from switchyard_common.errors import ConfigError, PermissionDenied, ServiceUnavailable
from switchyard_common.proto.controlplane_pb2 import Snapshot
from switchyard_dataplane.index import SnapshotIndex, build_index
from switchyard_dataplane.latency import LatencyTracker
from switchyard_dataplane.routing import Router, nominal_cost, order_targets

from .conftest import AUTH, SECRET, Gateway, chat_body, make_snapshot, openai_completion

URLS = {"a": "http://a.test", "b": "http://b.test", "c": "http://c.test"}


def snapshot(
    targets: list[tuple[str, str, int, int]],
    *,
    routing: str = "",
    model_routing: str = "",
    allowed: list[str] | None = None,
) -> Snapshot:
    """Model `chat` routed to (provider, upstream model, priority, weight) targets."""
    snap = make_snapshot(base_urls=URLS, targets=[(p, m, prio) for p, m, prio, _ in targets])
    chat = next(m for m in snap.models if m.name == "chat")
    for spec, (_, _, _, weight) in zip(chat.targets, targets, strict=True):
        spec.weight = weight
    chat.routing = model_routing
    policy = snap.organizations[0].policy
    policy.routing = routing
    policy.allowed_providers.extend(allowed or [])
    return snap


def index_of(snap: Snapshot) -> SnapshotIndex:
    return build_index(snap, secret_key=SECRET, env={})


def plan(index: SnapshotIndex, router: Router) -> list[str]:
    route = index.models["chat"]
    org = next(iter(index.keys.values())).org
    return [t.runtime.slug for t in router.plan(route, org, index.price_at)]


def cycling(values: list[float]) -> Callable[[], float]:
    it: Iterator[float] = iter(values * 1000)
    return lambda: next(it)


# --- priority ------------------------------------------------------------------------


def test_priority_orders_by_priority() -> None:
    index = index_of(snapshot([("c", "m", 2, 1), ("a", "m", 0, 1), ("b", "m", 1, 1)]))
    assert plan(index, Router()) == ["a", "b", "c"]


def test_priority_ties_are_shuffled_by_weight() -> None:
    index = index_of(snapshot([("a", "m", 0, 1), ("b", "m", 0, 3), ("c", "m", 1, 1)]))
    router = Router(rand=random.Random(7).random)
    firsts = Counter(plan(index, router)[0] for _ in range(4000))
    # b has 3/4 of the weight of the first tie group; c (priority 1) never comes first.
    assert set(firsts) == {"a", "b"}
    assert 0.70 < firsts["b"] / 4000 < 0.80


# --- weighted ------------------------------------------------------------------------


def test_weighted_draws_over_all_targets_by_weight() -> None:
    index = index_of(snapshot([("a", "m", 0, 1), ("b", "m", 1, 2), ("c", "m", 2, 1)], routing="weighted"))
    router = Router(rand=random.Random(11).random)
    orders = [plan(index, router) for _ in range(6000)]
    firsts = Counter(order[0] for order in orders)
    assert 0.22 < firsts["a"] / 6000 < 0.28
    assert 0.47 < firsts["b"] / 6000 < 0.53
    assert 0.22 < firsts["c"] / 6000 < 0.28
    # The others follow as fallbacks: every order holds every target once.
    assert all(sorted(order) == ["a", "b", "c"] for order in orders)


def test_weighted_puts_weight_zero_last() -> None:
    index = index_of(snapshot([("a", "m", 0, 0), ("b", "m", 1, 1), ("c", "m", 2, 1)], routing="weighted"))
    router = Router(rand=random.Random(3).random)
    assert {plan(index, router)[-1] for _ in range(200)} == {"a"}


def test_weighted_choice_follows_the_random_source() -> None:
    index = index_of(snapshot([("a", "m", 0, 1), ("b", "m", 0, 1)], routing="weighted"))
    # u^(1/w) with equal weights: the larger draw wins.
    assert plan(index, Router(rand=cycling([0.1, 0.9]))) == ["b", "a"]
    assert plan(index, Router(rand=cycling([0.9, 0.1]))) == ["a", "b"]


# --- least_latency -------------------------------------------------------------------


def test_least_latency_tries_unmeasured_targets_first_then_the_fastest() -> None:
    index = index_of(
        snapshot([("a", "m", 0, 1), ("b", "m", 1, 1), ("c", "m", 2, 1)], routing="least_latency")
    )
    router = Router()
    ids = {t.runtime.slug: t.breaker.id for t in index.models["chat"].targets}
    assert plan(index, router) == ["a", "b", "c"]  # nothing measured: priority order
    router.latency.observe(ids["a"], 0.300)
    assert plan(index, router) == ["b", "c", "a"]  # unmeasured b and c first
    router.latency.observe(ids["b"], 0.050)
    router.latency.observe(ids["c"], 0.120)
    assert plan(index, router) == ["b", "c", "a"]
    for _ in range(10):
        router.latency.observe(ids["b"], 0.900)  # b became slow
    assert plan(index, router) == ["c", "a", "b"]


def test_latency_average_moves_with_each_observation() -> None:
    tracker = LatencyTracker(alpha=0.5)
    assert tracker.get("t") is None
    tracker.observe("t", 1.0)
    tracker.observe("t", 3.0)
    assert tracker.get("t") == pytest.approx(2.0)
    tracker.observe_failure("t", 0.01)  # a fast failure counts as twice the average
    assert tracker.get("t") == pytest.approx(3.0)


def test_order_targets_without_measurements_keeps_priority() -> None:
    index = index_of(snapshot([("b", "m", 1, 1), ("a", "m", 0, 1)]))
    targets = index.models["chat"].targets
    assert [t.runtime.slug for t in order_targets(targets, "least_latency")] == ["a", "b"]


# --- lowest_cost ---------------------------------------------------------------------


def _priced(snap: Snapshot, name: str, per_in: float, per_out: float, since_ms: int = 0) -> None:
    snap.prices.add(model=name, unit="input_token", per_million=per_in, effective_from_ms=since_ms)
    snap.prices.add(model=name, unit="output_token", per_million=per_out, effective_from_ms=since_ms)


def test_lowest_cost_prefers_the_cheapest_target_price() -> None:
    snap = snapshot(
        [("a", "big", 0, 1), ("b", "small", 1, 1), ("c", "free-ish", 2, 1)], routing="lowest_cost"
    )
    _priced(snap, "a/big", 5.0, 15.0)
    _priced(snap, "b/small", 0.5, 1.5)
    # c has no price: last, whatever its priority.
    assert plan(index_of(snap), Router()) == ["b", "a", "c"]


def test_lowest_cost_follows_the_price_schedule() -> None:
    snap = snapshot([("a", "x", 0, 1), ("b", "y", 1, 1)], routing="lowest_cost")
    _priced(snap, "a/x", 1.0, 2.0)
    _priced(snap, "b/y", 2.0, 3.0)
    _priced(snap, "a/x", 9.0, 9.0, since_ms=2_000_000_000_000)  # a gets dearer then
    index = index_of(snap)
    assert plan(index, Router(clock=lambda: 1_900_000_000.0)) == ["a", "b"]
    assert plan(index, Router(clock=lambda: 2_000_000_001.0)) == ["b", "a"]


def test_nominal_cost_of_a_call() -> None:
    class Table:
        def __init__(self, per_million: dict[str, float]) -> None:
            self.per_million = per_million

    assert nominal_cost(None) is None
    assert nominal_cost(Table({})) is None
    # 1,000 input + 1,000 output tokens + one request.
    assert nominal_cost(Table({"input_token": 1.0, "output_token": 3.0, "request": 7.0})) == 4007.0
    assert nominal_cost(Table({"image": 40_000.0})) == 40_000.0


# --- model override, provider assignment, disabled providers -------------------------


def test_model_strategy_overrides_the_organization() -> None:
    snap = snapshot([("a", "x", 0, 1), ("b", "y", 1, 1)], routing="priority", model_routing="lowest_cost")
    _priced(snap, "b/y", 0.1, 0.1)
    _priced(snap, "a/x", 1.0, 1.0)
    assert plan(index_of(snap), Router()) == ["b", "a"]


def test_allowed_providers_filter_the_targets() -> None:
    index = index_of(snapshot([("a", "x", 0, 1), ("b", "y", 1, 1), ("c", "z", 2, 1)], allowed=["c", "b"]))
    assert plan(index, Router()) == ["b", "c"]


def test_no_allowed_target_is_refused_naming_the_organization() -> None:
    index = index_of(snapshot([("a", "x", 0, 1)], allowed=["b"]))
    with pytest.raises(PermissionDenied) as refused:
        plan(index, Router())
    assert refused.value.status == 403
    assert refused.value.code == "provider_not_allowed"
    assert "organization 'acme'" in refused.value.message
    assert "'chat'" in refused.value.message


async def test_no_allowed_target_answers_403_in_each_protocol(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, json=openai_completion()), snapshot([("a", "x", 0, 1)], allowed=["b"])
    )
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "provider_not_allowed"
    anthropic = await gw.client.post(
        "/v1/messages",
        json={"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": AUTH["Authorization"][7:], "anthropic-version": "2023-06-01"},
    )
    assert anthropic.status_code == 403
    assert anthropic.json()["error"]["type"] == "permission_error"
    assert "organization 'acme'" in anthropic.json()["error"]["message"]
    assert gw.upstream_requests == []
    assert [e.status for e in gw.events] == [403, 403]


def test_disabled_providers_are_left_out() -> None:
    snap = snapshot([("a", "x", 0, 1), ("b", "y", 1, 1)])
    next(p for p in snap.providers if p.slug == "a").disabled = True
    index = index_of(snap)
    assert plan(index, Router()) == ["b"]
    next(p for p in snap.providers if p.slug == "b").disabled = True
    key = next(iter(index_of(snap).keys.values()))
    with pytest.raises(ServiceUnavailable):
        index_of(snap).route_for(key, "chat")


def test_unknown_strategies_are_refused() -> None:
    with pytest.raises(ConfigError) as bad_org:
        index_of(snapshot([("a", "x", 0, 1)], routing="fastest"))
    assert "unknown routing strategy 'fastest'" in str(bad_org.value)
    with pytest.raises(ConfigError) as bad_model:
        index_of(snapshot([("a", "x", 0, 1)], model_routing="cheapest"))
    assert "models[chat].routing" in str(bad_model.value)


# --- breaker identity -----------------------------------------------------------------


def test_breaker_epoch_identifies_the_target_breaker() -> None:
    snap = snapshot([("a", "x", 0, 1)])
    provider = next(p for p in snap.providers if p.slug == "a")
    provider.breaker_epoch = "e1"
    first = index_of(snap).models["chat"].targets[0].breaker
    assert (first.provider, first.epoch, first.upstream_model) == ("a", "e1", "x")
    provider.breaker_epoch = "e2"
    assert index_of(snap).models["chat"].targets[0].breaker.id != first.id


def test_without_an_epoch_one_is_derived_from_url_and_credential() -> None:
    snap = snapshot([("a", "x", 0, 1)])
    before = index_of(snap).models["chat"].targets[0].breaker.id
    assert index_of(snap).models["chat"].targets[0].breaker.id == before  # stable
    next(p for p in snap.providers if p.slug == "a").base_url = "http://a2.test"
    assert index_of(snap).models["chat"].targets[0].breaker.id != before
