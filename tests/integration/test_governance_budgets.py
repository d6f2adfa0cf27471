"""Budgets (issue 4 item 5) on two data-plane processes sharing Redis: admission
reserves the worst-case cost (input + max_tokens at the model's price) so 50 concurrent
calls at a key with budget for 10 admit at most 10; the rest get 429
insufficient_quota in the caller's protocol; settlement charges the real cost (which the
usage event carries); organization budgets; budget use through the REST API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.governance_stack import (
    Call,
    GovStack,
    Ports,
    error_of,
    governance_stack,
    mock_provider,
    new_key,
    status_counts,
    target,
    token_prices,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TEN_CALLS = new_key()
SETTLES = new_key()
ORG_KEY = new_key()

# Output costs 1000 per million = 0.001 per token; input is free, so a call with
# max_tokens 100 reserves at most 0.1, and costs 0.1 when the answer uses all 100.
MAX_TOKENS = 100
PER_CALL = 0.1
# Room for 10 calls (10.5 would need an eleventh half call): no float-rounding edge.
AMOUNT = 1.05


def document(ports: Ports) -> dict[str, Any]:
    budget = {"amount": AMOUNT, "currency": "USD", "period": "day"}
    return {
        "organizations": [
            {"name": "acme"},
            {"name": "orgbud", "policy": {"limits": {"budgets": [{"amount": 0.35, "period": "month"}]}}},
        ],
        "providers": [mock_provider(ports, "up")],
        "models": [
            {"name": "b-full", "targets": [target("up", "b-full")]},
            {"name": "b-short", "targets": [target("up", "b-short")]},
        ],
        "prices": [*token_prices("b-full", 0, 1000), *token_prices("b-short", 0, 1000)],
        "keys": [
            {"name": "ten-calls", "org": "acme", "value": TEN_CALLS, "limits": {"budget": budget}},
            {"name": "settles", "org": "acme", "value": SETTLES, "limits": {"budget": budget}},
            {"name": "org-key", "org": "orgbud", "value": ORG_KEY},
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[GovStack]:
    with governance_stack(tmp_path_factory.mktemp("gov-budgets"), document) as running:
        running.mock.rule("b-full", prompt_tokens=5, completion_tokens=MAX_TOKENS, latency_ms=50)
        running.mock.rule("b-short", prompt_tokens=5, completion_tokens=10)
        yield running


def _call(key: str, model: str, dp: int = 0, protocol: str = "openai") -> Call:
    return Call(key=key, model=model, dp=dp, protocol=protocol, extra={"max_tokens": MAX_TOKENS})


def _budget(stack: GovStack, path: str) -> dict[str, Any]:
    response = stack.api("GET", path)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["source"] == "redis", data
    assert len(data["budgets"]) == 1, data
    return dict(data["budgets"][0])


def test_fifty_concurrent_calls_cannot_overspend(stack: GovStack) -> None:
    calls = [_call(TEN_CALLS, "b-full", dp=i % 2) for i in range(50)]
    answers = stack.blast(calls, concurrency=50)
    counts = status_counts(answers)
    assert set(counts) <= {200, 429}, counts
    # Reservations make the bound exact: never more than amount / worst case = 10.
    assert counts[200] <= 10, f"{counts[200]} calls admitted on a budget for 10"
    assert counts[200] == 10, f"only {counts[200]} admitted: the budget had room for 10"

    refused = next(a for a in answers if a.status_code == 429)
    error = error_of(refused)
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota"), error
    assert stack.event_for(refused)["refused_by"] == "key.budget.day"

    admitted = [stack.event_for(a) for a in answers if a.status_code == 200]
    assert sum(e["cost"] for e in admitted) == pytest.approx(10 * PER_CALL)

    usage = _budget(stack, f"/keys/{stack.key_id('ten-calls')}/budget")
    assert usage["period"] == "day" and usage["currency"] == "USD"
    assert usage["amount"] == pytest.approx(AMOUNT)
    assert usage["spent"] == pytest.approx(10 * PER_CALL)
    assert usage["reserved"] == pytest.approx(0)
    assert usage["remaining"] == pytest.approx(AMOUNT - 10 * PER_CALL)

    # The same through `switchyard usage budget`.
    shown = json.loads(
        stack.cli("usage", "budget", "--key", "ten-calls", "--org", "acme", "--output", "json").stdout
    )
    (cli_usage,) = shown["key"]["budgets"]
    assert cli_usage["spent"] == pytest.approx(10 * PER_CALL)
    assert cli_usage["remaining"] == pytest.approx(AMOUNT - 10 * PER_CALL)

    # Over budget on the Anthropic route too, in its shape.
    anthropic = stack.call(_call(TEN_CALLS, "b-full", dp=1, protocol="anthropic"))
    assert anthropic.status_code == 429, anthropic.text
    body = anthropic.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error", body
    assert "budget" in body["error"]["message"].lower() or "quota" in body["error"]["message"].lower()


def test_settlement_charges_the_real_cost(stack: GovStack) -> None:
    # Each call reserves 0.1 but really costs 10 tokens = 0.01: 20 calls fit easily.
    for i in range(20):
        answered = stack.call(_call(SETTLES, "b-short", dp=i % 2))
        assert answered.status_code == 200, (i, answered.text)
        assert stack.event_for(answered)["cost"] == pytest.approx(0.01)
    usage = _budget(stack, f"/keys/{stack.key_id('settles')}/budget")
    assert usage["spent"] == pytest.approx(0.2)
    assert usage["remaining"] == pytest.approx(AMOUNT - 0.2)


def test_organization_budget(stack: GovStack) -> None:
    statuses = [stack.call(_call(ORG_KEY, "b-full", dp=i % 2)).status_code for i in range(5)]
    # 0.35 for the organization: three calls of 0.1, the fourth would need 0.4.
    assert statuses == [200, 200, 200, 429, 429], statuses
    refused = stack.call(_call(ORG_KEY, "b-full"))
    assert stack.event_for(refused)["refused_by"] == "org.budget.month"
    usage = _budget(stack, "/organizations/orgbud/budget")
    assert usage["period"] == "month"
    assert usage["spent"] == pytest.approx(0.3)
