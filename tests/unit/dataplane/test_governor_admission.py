"""Admission through the gateway with the in-memory limiter (embedded mode): rate limits,
concurrency, budgets, shadow mode, unpriced policy, headers and usage-event fields."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from switchyard_common.proto.controlplane_pb2 import Snapshot
from switchyard_dataplane.admission.budgets import worst_case_cost
from switchyard_dataplane.admission.governor import Governor
from switchyard_dataplane.chat_request import parse_chat_body
from switchyard_dataplane.exchange import estimate_input_tokens

from tests.unit.dataplane.conftest import AUTH, KEY, chat_body, make_snapshot, openai_completion
from tests.unit.dataplane.governed import governed_gateway, ok_upstream

pytestmark = pytest.mark.timeout(60)

ANTHROPIC = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def post(gw, body: bytes = b"", headers: dict[str, str] | None = None) -> object:  # type: ignore[no-untyped-def]
    return gw.client.post("/v1/chat/completions", content=body or chat_body(), headers=headers or AUTH)


async def test_key_rpm_refuses_with_openai_headers_and_records_the_rule() -> None:
    snap = make_snapshot()
    snap.keys[0].limits.rpm = 2
    async with governed_gateway(snap) as gw:
        first = await post(gw)
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-reset-requests"].endswith("s")
        second = await post(gw)
        assert second.headers["x-ratelimit-remaining-requests"] == "0"
        third = await post(gw)
        assert third.status_code == 429
        error = third.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        assert "API key 'test'" in error["message"] and "Limit 2, Used 2" in error["message"]
        assert 1 <= int(third.headers["retry-after"]) <= 60
        assert third.headers["x-ratelimit-remaining-requests"] == "0"
        event = gw.events[-1]
        assert event.status == 429 and event.refused_by == "key.rpm"
        assert [e.refused_by for e in gw.events] == [None, None, "key.rpm"]
        metrics = gw.governor.metrics.render().decode()
        assert 'switchyard_dataplane_limiter_refusals_total{rule="key.rpm"} 1.0' in metrics
        # The refused call never reached the upstream.
        assert [e.provider for e in gw.events][:2] == ["up", "up"]


async def test_anthropic_callers_get_the_refusal_in_their_protocol() -> None:
    snap = make_snapshot()
    snap.keys[0].limits.rpm = 1
    body = orjson.dumps({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    async with governed_gateway(snap) as gw:
        assert (await post(gw)).status_code == 200
        refused = await gw.client.post("/v1/messages", content=body, headers=ANTHROPIC)
        assert refused.status_code == 429
        assert refused.json()["type"] == "error"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert "retry-after" in refused.headers


async def test_org_and_model_limits_count_every_key_of_the_org() -> None:
    snap = make_snapshot()
    snap.organizations[0].policy.limits.rpm = 100
    snap.models[0].limits.rpm = 1  # model "chat"
    async with governed_gateway(snap) as gw:
        assert (await post(gw)).status_code == 200
        refused = await post(gw)
        assert refused.status_code == 429
        assert gw.events[-1].refused_by == "model.rpm"
        assert "model 'chat' in organization 'acme'" in refused.json()["error"]["message"]
        # Another model of the org is not limited by chat's limit.
        assert (await post(gw, chat_body("echo"))).status_code == 200


async def test_shadowed_limits_admit_and_record_what_they_would_have_refused() -> None:
    snap = make_snapshot()
    snap.keys[0].limits.rpm = 1
    snap.keys[0].shadow.append("rpm")
    async with governed_gateway(snap) as gw:
        assert (await post(gw)).status_code == 200
        assert (await post(gw)).status_code == 200
        assert [e.shadow_refusals for e in gw.events] == [[], ["key.rpm"]]
        assert gw.events[-1].refused_by is None


async def test_concurrency_limit_refuses_while_calls_run_and_frees_the_slot_after() -> None:
    snap = make_snapshot()
    snap.keys[0].limits.concurrency = 1
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await release.wait()
        return httpx.Response(200, json=openai_completion())

    async with governed_gateway(snap, upstream=slow) as gw:
        running = asyncio.create_task(post(gw))  # type: ignore[arg-type]
        await asyncio.wait_for(arrived.wait(), 10)
        refused = await post(gw)
        assert refused.status_code == 429
        assert "concurrent requests" in refused.json()["error"]["message"]
        assert gw.events[-1].refused_by == "key.concurrency"
        release.set()
        assert (await running).status_code == 200
        assert (await post(gw)).status_code == 200


def _budget_snapshot(amount: float, period: str = "day") -> Snapshot:
    snap = make_snapshot()
    snap.keys[0].limits.budgets.add(amount=amount, currency="USD", period=period)
    return snap


async def test_budget_refuses_with_insufficient_quota_once_spent_plus_worst_case_exceeds_it() -> None:
    # Each call really costs (7 * 2 + 10 * 10) / 1e6 = 0.000114; with max_tokens 100 its
    # worst case is ~0.00105: the first call fits in 0.0011, the second does not.
    async with governed_gateway(_budget_snapshot(0.0011), upstream=ok_upstream(7, 10)) as gw:
        first = await post(gw, chat_body(max_tokens=100))
        assert first.status_code == 200
        refused = await post(gw, chat_body(max_tokens=100))
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["type"] == "insufficient_quota" and error["code"] == "insufficient_quota"
        assert "day budget of API key 'test'" in error["message"]
        assert gw.events[-1].refused_by == "key.budget.day"
        # Retry-After points at the end of the UTC day.
        assert 0 < int(refused.headers["retry-after"]) <= 86400
        [usage] = await gw.governor.local.read_budget_usage(
            "key", "key-1", [_budget_rule(0.0011)], gw.events[0].ts
        )
        # What the budget settled is exactly what the usage event carries.
        assert usage.spent == pytest.approx(gw.events[0].cost, abs=1e-9)
        assert gw.events[0].cost == pytest.approx(0.000114)
        assert usage.reserved == 0
        # A smaller call still fits what is left.
        assert (await post(gw, chat_body(max_tokens=10))).status_code == 200


def _budget_rule(amount: float, period: str = "day") -> object:
    from switchyard_dataplane.admission.rules import BudgetRule

    return BudgetRule(amount=amount, currency="USD", period=period)


async def test_fifty_concurrent_calls_at_a_budget_for_ten_admit_at_most_ten() -> None:
    body = chat_body(max_tokens=50)
    tokens = estimate_input_tokens(parse_chat_body(body))
    worst = worst_case_cost({"input_token": 2.0, "output_token": 10.0}, tokens, 50)
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=openai_completion(prompt=7, completion=50))

    async with governed_gateway(_budget_snapshot(worst * 10.5, "month"), upstream=slow) as gw:
        calls = [asyncio.create_task(post(gw, body)) for _ in range(50)]  # type: ignore[arg-type]
        while len(gw.events) < 40:  # the refusals answer at once
            await asyncio.sleep(0.01)
        release.set()
        statuses = [r.status_code for r in await asyncio.gather(*calls)]
        assert statuses.count(200) == 10
        assert statuses.count(429) == 40
        [usage] = await gw.governor.local.read_budget_usage(
            "key", "key-1", [_budget_rule(worst * 10.5, "month")], gw.events[0].ts
        )
        assert usage.spent == pytest.approx(sum(e.cost for e in gw.events), abs=1e-8)
        assert usage.spent <= usage.amount and usage.reserved == 0


async def test_unpriced_models_are_refused_shadowed_or_flagged_per_org_policy() -> None:
    snap = make_snapshot()
    snap.organizations[0].policy.unpriced = "refuse"
    async with governed_gateway(snap) as gw:
        refused = await post(gw, chat_body("echo"))  # "echo" has no price
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "model_unpriced" and "organization 'acme'" in error["message"]
        assert gw.events[-1].refused_by == "org.unpriced"
        assert (await post(gw)).status_code == 200  # "chat" is priced
        # A price of the target the model routes to is enough.
        snap.prices.add(model="builtin/echo-1", unit="input_token", per_million=1.0)
        gw.swap(snap)
        assert (await post(gw, chat_body("echo"))).status_code == 200
    snap = make_snapshot()
    snap.organizations[0].policy.unpriced = "refuse"
    snap.organizations[0].policy.shadow.append("unpriced")
    async with governed_gateway(snap) as gw:
        assert (await post(gw, chat_body("echo"))).status_code == 200
        assert gw.events[-1].shadow_refusals == ["org.unpriced"]


async def test_keys_without_limits_get_no_headers_and_no_admission_work() -> None:
    governor = Governor()
    async with governed_gateway(make_snapshot(), governor) as gw:
        response = await post(gw)
        assert response.status_code == 200
        assert not any(name.startswith("x-ratelimit") for name in response.headers)
        assert governor.local._rates == {} and governor.local._budgets == {}


async def test_limits_change_with_the_snapshot() -> None:
    snap = make_snapshot()
    snap.keys[0].limits.rpm = 1
    async with governed_gateway(snap) as gw:
        assert (await post(gw)).status_code == 200
        assert (await post(gw)).status_code == 429
        snap.keys[0].limits.rpm = 5
        gw.swap(snap)
        assert (await post(gw)).status_code == 200


async def test_headers_describe_the_rule_with_least_room_and_count_tokens() -> None:
    snap = make_snapshot()
    snap.keys[0].limits.rpm = 10
    snap.keys[0].limits.tpm = 1000
    snap.organizations[0].policy.limits.rpm = 3
    body = chat_body()
    tokens = estimate_input_tokens(parse_chat_body(body))
    async with governed_gateway(snap) as gw:
        response = await post(gw, body)
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        assert response.headers["x-ratelimit-remaining-requests"] == "2"
        assert response.headers["x-ratelimit-limit-tokens"] == "1000"
        assert response.headers["x-ratelimit-remaining-tokens"] == str(1000 - tokens)
        # Settlement replaced the estimate with the real 7 + 3 tokens.
        second = await post(gw, body)
        assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - 10 - tokens)


async def test_streams_carry_the_rate_headers_too() -> None:
    from tests.unit.dataplane.wire import openai_stream

    snap = make_snapshot()
    snap.keys[0].limits.rpm = 4

    def stream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b"".join(openai_stream()), headers={"content-type": "text/event-stream"}
        )

    async with governed_gateway(snap, upstream=stream) as gw:
        response = await post(gw, chat_body(stream=True))
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining-requests"] == "3"
