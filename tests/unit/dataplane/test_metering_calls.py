"""What calls are billed at, as their usage events carry it: the public model's price,
else the answering target's; unpriced calls flagged; cache reads and writes and
reasoning at their own prices; embeddings by input tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from switchyard_common.proto.controlplane_pb2 import Snapshot

from .conftest import AUTH, KEY, Gateway, chat_body, make_snapshot, openai_completion
from .wire import anthropic_message

ANTHROPIC_CALLER = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def _unpriced_snapshot(**kwargs: object) -> Snapshot:
    snap = make_snapshot(**kwargs)  # type: ignore[arg-type]
    del snap.prices[:]
    return snap


def _answer(**usage: int) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=openai_completion(**usage))


async def test_public_price_bills_the_call(make_gateway: Callable[..., Gateway]) -> None:
    snap = make_snapshot()
    # A target price exists too: the public model's price is what callers pay.
    snap.prices.add(model="up/gpt-up", unit="input_token", per_million=0.5, currency="USD")
    gw = make_gateway(_answer(prompt=100, completion=10), snap)
    assert (
        await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    ).status_code == 200
    [event] = gw.events
    assert event.cost == pytest.approx((100 * 2.0 + 10 * 10.0) / 1e6)
    assert (event.currency, event.unpriced, event.key_name) == ("USD", False, "test")


async def test_the_price_in_effect_when_the_call_is_made_bills_it(
    make_gateway: Callable[..., Gateway],
) -> None:
    """The snapshot carries the whole schedule: a call is billed (and budgets settled) at
    the newest price already in effect, not the oldest one nor one scheduled later."""
    snap = make_snapshot()
    since_2020 = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
    from_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
    snap.prices.add(model="chat", unit="input_token", per_million=3.0, effective_from_ms=since_2020)
    snap.prices.add(model="chat", unit="input_token", per_million=1000.0, effective_from_ms=from_2100)
    snap.prices.add(model="chat", unit="output_token", per_million=99.0, effective_from_ms=from_2100)
    gw = make_gateway(_answer(prompt=100, completion=10), snap)
    assert (
        await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    ).status_code == 200
    [event] = gw.events
    assert event.cost == pytest.approx((100 * 3.0 + 10 * 10.0) / 1e6)


async def test_target_price_bills_a_model_without_its_own(make_gateway: Callable[..., Gateway]) -> None:
    snap = _unpriced_snapshot()
    snap.prices.add(model="up/gpt-up", unit="input_token", per_million=0.5, currency="EUR")
    snap.prices.add(model="up/gpt-up", unit="output_token", per_million=1.5, currency="EUR")
    gw = make_gateway(_answer(prompt=100, completion=10), snap)
    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    [event] = gw.events
    assert event.cost == pytest.approx((100 * 0.5 + 10 * 1.5) / 1e6)
    assert (event.currency, event.unpriced) == ("EUR", False)


async def test_unpriced_call_is_admitted_and_flagged(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_answer(prompt=100, completion=10), _unpriced_snapshot())
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 200  # the org's policy defaults to `unpriced: flag`
    [event] = gw.events
    assert (event.cost, event.unpriced, event.input_tokens) == (0.0, True, 100)


async def test_unpriced_call_refused_when_the_org_says_so(make_gateway: Callable[..., Gateway]) -> None:
    snap = _unpriced_snapshot()
    snap.organizations[0].policy.unpriced = "refuse"
    gw = make_gateway(_answer(), snap)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_unpriced"
    assert gw.upstream_requests == []  # refused before calling upstream
    [event] = gw.events
    assert (event.status, event.refused_by, event.cost, event.unpriced) == (403, "org.unpriced", 0.0, False)


async def test_cache_reads_writes_and_reasoning_at_their_own_prices(
    make_gateway: Callable[..., Gateway],
) -> None:
    snap = _unpriced_snapshot(formats={"up": "anthropic"})
    for unit, price in (
        ("input_token", 3.0),
        ("output_token", 15.0),
        ("cached_input_token", 0.3),
        ("cache_write_token", 3.75),
    ):
        snap.prices.add(model="chat", unit=unit, per_million=price, currency="USD")
    usage = {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_input_tokens": 400,
        "cache_creation_input_tokens": 50,
    }
    gw = make_gateway(lambda request: httpx.Response(200, json=anthropic_message(usage=usage)), snap)
    body = {"model": "chat", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    assert (await gw.client.post("/v1/messages", json=body, headers=ANTHROPIC_CALLER)).status_code == 200
    [event] = gw.events
    # Anthropic's input_tokens exclude the cache: the event's include them (550).
    assert (event.input_tokens, event.cached_tokens, event.cache_write_tokens) == (550, 400, 50)
    assert event.cost == pytest.approx((100 * 3.0 + 400 * 0.3 + 50 * 3.75 + 20 * 15.0) / 1e6)


async def test_reasoning_tokens_priced_apart(make_gateway: Callable[..., Gateway]) -> None:
    snap = make_snapshot()
    snap.prices.add(model="chat", unit="reasoning_token", per_million=30.0, currency="USD")
    answer = openai_completion(prompt=10, completion=50)
    answer["usage"]["completion_tokens_details"] = {"reasoning_tokens": 40}
    gw = make_gateway(lambda request: httpx.Response(200, json=answer), snap)
    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    [event] = gw.events
    assert (event.output_tokens, event.reasoning_tokens) == (50, 40)
    assert event.cost == pytest.approx((10 * 2.0 + 10 * 10.0 + 40 * 30.0) / 1e6)


EMBEDDING = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
    "model": "gpt-up",
}


async def test_embeddings_are_billed_by_input_tokens(make_gateway: Callable[..., Gateway]) -> None:
    reported = {**EMBEDDING, "usage": {"prompt_tokens": 12, "total_tokens": 12}}
    gw = make_gateway(lambda request: httpx.Response(200, json=reported))
    await gw.client.post("/v1/embeddings", json={"model": "chat", "input": ["a b", "c d"]}, headers=AUTH)
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens, event.tokens_estimated) == (12, 0, False)
    assert event.cost == pytest.approx(12 * 2.0 / 1e6)


async def test_embeddings_without_usage_are_counted_locally(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda request: httpx.Response(200, json=EMBEDDING))
    # Strings are tokenized; token-id inputs are their own count.
    body = {"model": "chat", "input": [[1, 2, 3, 4, 5], [6, 7]]}
    await gw.client.post("/v1/embeddings", json=body, headers=AUTH)
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens, event.tokens_estimated) == (7, 0, True)
    assert event.cost == pytest.approx(7 * 2.0 / 1e6)


async def test_target_prices_fill_units_the_public_model_lacks(make_gateway: Callable[..., Gateway]) -> None:
    snap = _unpriced_snapshot()
    snap.prices.add(model="chat", unit="input_token", per_million=2.0, currency="USD")
    snap.prices.add(model="up/gpt-up", unit="input_token", per_million=0.5, currency="USD")
    snap.prices.add(model="up/gpt-up", unit="output_token", per_million=1.5, currency="USD")
    # Sub-kinds are the public model's business: its cached tokens stay at its input price.
    snap.prices.add(model="up/gpt-up", unit="cached_input_token", per_million=0.01, currency="USD")
    answer = openai_completion(prompt=100, completion=10)
    answer["usage"]["prompt_tokens_details"] = {"cached_tokens": 60}
    gw = make_gateway(lambda request: httpx.Response(200, json=answer), snap)
    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    [event] = gw.events
    assert event.cost == pytest.approx((100 * 2.0 + 10 * 1.5) / 1e6)
    assert event.unpriced is False


async def test_a_unit_priced_nowhere_flags_the_call(make_gateway: Callable[..., Gateway]) -> None:
    snap = _unpriced_snapshot()
    snap.prices.add(model="chat", unit="input_token", per_million=2.0, currency="USD")
    # The target's output price is in another currency: not mixed into a USD bill.
    snap.prices.add(model="up/gpt-up", unit="output_token", per_million=1.5, currency="EUR")
    gw = make_gateway(_answer(prompt=100, completion=10), snap)
    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    [event] = gw.events
    assert (event.cost, event.currency, event.unpriced) == (pytest.approx(200 / 1e6), "USD", True)
