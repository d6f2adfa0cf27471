"""Admission on every caller surface and for every counted rule kind: the embeddings
route and the Anthropic route get limits, x-ratelimit-* headers on answers and refusals,
and budget refusals in their protocol; every counted rule of a key, a model and an
organization can be put in shadow mode (admits, records the rule, counts the metric)."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from switchyard_common.proto.controlplane_pb2 import Snapshot

from tests.unit.dataplane.conftest import AUTH, KEY, chat_body, make_snapshot, openai_completion
from tests.unit.dataplane.governed import governed_gateway

pytestmark = pytest.mark.timeout(60)

ANTHROPIC = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
MESSAGES = orjson.dumps({"model": "chat", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]})
EMBED = orjson.dumps({"model": "embed", "input": "some words to embed"})


def _snapshot() -> Snapshot:
    snap = make_snapshot()
    snap.keys[0].scopes.append("embedding")
    snap.keys[0].models.append("embed")
    emb = snap.models.add(id="m-emb", name="embed", capability="embedding")
    emb.targets.add(provider_slug="up", upstream_model="emb-up")
    snap.prices.add(model="embed", unit="input_token", per_million=1.0, currency="USD")
    return snap


def _upstream(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/embeddings"):
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "model": "emb-up",
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            },
        )
    return httpx.Response(200, json=openai_completion(prompt=7, completion=3))


async def test_embeddings_get_limits_headers_and_refusals() -> None:
    snap = _snapshot()
    snap.keys[0].limits.rpm = 2
    snap.keys[0].limits.tpm = 1000
    async with governed_gateway(snap, upstream=_upstream) as gw:
        first = await gw.client.post("/v1/embeddings", content=EMBED, headers=AUTH)
        assert first.status_code == 200, first.text
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-limit-tokens"] == "1000"
        assert int(first.headers["x-ratelimit-remaining-tokens"]) < 1000
        assert (await gw.client.post("/v1/embeddings", content=EMBED, headers=AUTH)).status_code == 200
        refused = await gw.client.post("/openai/v1/embeddings", content=EMBED, headers=AUTH)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
        assert "requests per minute" in error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert refused.headers["x-ratelimit-reset-requests"]
        assert (gw.events[-1].status, gw.events[-1].refused_by) == (429, "key.rpm")


async def test_embeddings_reserve_and_settle_budgets() -> None:
    snap = _snapshot()
    # An embedding's worst case is its input only (no output allowance): tiny budget fits.
    snap.keys[0].limits.budgets.add(amount=0.0001, currency="USD", period="day")
    async with governed_gateway(snap, upstream=_upstream) as gw:
        answered = await gw.client.post("/v1/embeddings", content=EMBED, headers=AUTH)
        assert answered.status_code == 200, answered.text
        assert gw.events[-1].cost == pytest.approx(4 / 1e6)
        # A chat call reserves its output allowance too: over this budget.
        refused = await gw.client.post(
            "/v1/chat/completions", content=chat_body(max_tokens=100), headers=AUTH
        )
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "insufficient_quota"


async def test_anthropic_route_gets_headers_on_answers_and_budget_refusals_in_its_shape() -> None:
    snap = _snapshot()
    snap.keys[0].limits.rpm = 5
    snap.keys[0].limits.budgets.add(amount=0.0011, currency="USD", period="day")
    async with governed_gateway(snap, upstream=_upstream) as gw:
        answered = await gw.client.post("/v1/messages", content=MESSAGES, headers=ANTHROPIC)
        assert answered.status_code == 200, answered.text
        assert answered.json()["type"] == "message"
        assert answered.headers["x-ratelimit-limit-requests"] == "5"
        assert answered.headers["x-ratelimit-remaining-requests"] == "4"
        big = orjson.dumps(
            {"model": "chat", "max_tokens": 200, "messages": [{"role": "user", "content": "x"}]}
        )
        refused = await gw.client.post("/anthropic/v1/messages", content=big, headers=ANTHROPIC)
        assert refused.status_code == 429
        body = refused.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert "day budget of API key 'test'" in body["error"]["message"]
        assert 0 < int(refused.headers["retry-after"]) <= 86400
        assert gw.events[-1].refused_by == "key.budget.day"


def _shadow_everything(snap: Snapshot) -> None:
    key = snap.keys[0]
    key.limits.rpm = 1
    key.limits.tpm = 1
    key.limits.concurrency = 1
    key.limits.budgets.add(amount=0.000001, currency="USD", period="day")
    key.shadow.extend(["rpm", "tpm", "concurrency", "budget"])
    model = snap.models[0]  # "chat"
    model.limits.rpm = 1
    model.limits.tpm = 1
    model.shadow.extend(["rpm", "tpm"])
    org = snap.organizations[0].policy
    org.limits.rpm = 1
    org.limits.tpm = 1
    org.budgets.add(amount=0.000001, currency="USD", period="month")
    org.shadow.extend(["rpm", "tpm", "budget"])


async def test_every_counted_rule_of_key_model_and_org_can_be_shadowed() -> None:
    snap = _snapshot()
    _shadow_everything(snap)
    async with governed_gateway(snap, upstream=_upstream) as gw:
        answers = [
            await gw.client.post("/v1/chat/completions", content=chat_body(max_tokens=20), headers=AUTH),
            await gw.client.post("/v1/messages", content=MESSAGES, headers=ANTHROPIC),
        ]
        assert [a.status_code for a in answers] == [200, 200]
        first, second = gw.events
        assert first.refused_by is None and second.refused_by is None
        # Tokens and budgets are over at once (estimate > 1 token, worst case > budget).
        expected_first = {"key.tpm", "model.tpm", "org.tpm", "key.budget.day", "org.budget.month"}
        assert set(first.shadow_refusals) == expected_first, first.shadow_refusals
        # The second call is over every request rule too (concurrency is free again:
        # the first call finished).
        assert set(second.shadow_refusals) == expected_first | {"key.rpm", "model.rpm", "org.rpm"}
        metrics = gw.governor.metrics.render().decode()
        for rule, count in (("key.rpm", 1), ("model.tpm", 2), ("org.budget.month", 2)):
            assert f'switchyard_dataplane_shadow_refusals_total{{rule="{rule}"}} {count}.0' in metrics, rule
        # Shadowed rules are not limits the caller must pace to: no x-ratelimit headers.
        assert not [h for a in answers for h in a.headers if h.startswith("x-ratelimit")]


async def test_a_shadowed_concurrency_limit_admits_calls_in_flight() -> None:
    snap = _snapshot()
    snap.keys[0].limits.concurrency = 1
    snap.keys[0].shadow.append("concurrency")
    release = asyncio.Event()
    arrived: list[httpx.Request] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.append(request)
        await release.wait()
        return httpx.Response(200, json=openai_completion())

    async with governed_gateway(snap, upstream=slow) as gw:
        calls = [
            asyncio.create_task(gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH))
            for _ in range(2)
        ]
        # Both reach the upstream while the other is in flight (enforced, one gets 429).
        async with asyncio.timeout(10):
            while len(arrived) < 2:
                await asyncio.sleep(0.01)
        release.set()
        assert [(await c).status_code for c in calls] == [200, 200]
        assert sorted(tuple(e.shadow_refusals) for e in gw.events) == [(), ("key.concurrency",)]


async def test_an_upstream_error_answer_carries_the_rate_limit_headers_too() -> None:
    snap = _snapshot()
    snap.keys[0].limits.rpm = 5

    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})

    async with governed_gateway(snap, upstream=failing) as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 500
        assert response.headers["x-ratelimit-limit-requests"] == "5"
        assert response.headers["x-ratelimit-remaining-requests"] == "4"
