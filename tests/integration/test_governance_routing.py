"""Routing strategies across two data-plane processes (issue 4 item 1): priority,
weighted, least_latency, lowest_cost; per-organization strategy, model-level override,
per-organization provider assignment and disabled providers. Which target served a call
is read from the faulty mock's per-provider counters and from the usage event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.governance_stack import (
    Call,
    GovStack,
    Ports,
    attempt_chain,
    error_of,
    governance_stack,
    mock_provider,
    new_key,
    target,
    token_prices,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACME = new_key()
COSTLY = new_key()
RESTRICTED = new_key()
STRICT = new_key()


def document(ports: Ports) -> dict[str, Any]:
    return {
        "organizations": [
            {"name": "acme"},
            {"name": "costly", "policy": {"routing": "lowest_cost"}},
            {"name": "restricted", "policy": {"providers": ["pb"]}},
            {"name": "strict", "policy": {"overflow": "fail"}},
        ],
        "providers": [
            mock_provider(ports, "pa"),
            mock_provider(ports, "pb"),
            mock_provider(ports, "pd", enabled=False),
        ],
        "models": [
            {"name": "r-priority", "targets": [target("pa", "prio-a", 0), target("pb", "prio-b", 1)]},
            {
                "name": "r-weighted",
                "routing": "weighted",
                "targets": [target("pa", "w-a", 0, weight=3), target("pb", "w-b", 0, weight=1)],
            },
            {
                "name": "r-latency",
                "routing": "least_latency",
                "targets": [target("pa", "lat-slow", 0), target("pb", "lat-fast", 0)],
            },
            {
                "name": "r-cheap",
                "routing": "lowest_cost",
                "targets": [target("pa", "cost-a", 0), target("pb", "cost-b", 1)],
            },
            {"name": "r-orgcost", "targets": [target("pa", "oc-a", 0), target("pb", "oc-b", 1)]},
            {
                "name": "r-override",
                "routing": "priority",
                "targets": [target("pa", "ov-a", 0), target("pb", "ov-b", 1)],
            },
            {"name": "r-shared", "targets": [target("pa", "sh-a", 0), target("pb", "sh-b", 1)]},
            {"name": "r-only-a", "targets": [target("pa", "only-a", 0)]},
            {"name": "r-disabled", "targets": [target("pd", "dis-d", 0), target("pb", "dis-b", 1)]},
            # Target quotas (the provider's own limits): over them, calls overflow.
            {
                "name": "r-quota",
                "targets": [target("pa", "q-a", 0, limits={"rpm": 3}), target("pb", "q-b", 1)],
            },
            {
                "name": "r-quota-fail",
                "targets": [target("pa", "qf-a", 0, limits={"rpm": 3}), target("pb", "qf-b", 1)],
            },
        ],
        "prices": [
            # Target prices (what each provider charges): lowest_cost ranks by them.
            *token_prices("pa/cost-a", 10.0, 30.0),
            *token_prices("pb/cost-b", 1.0, 2.0),
            *token_prices("pa/oc-a", 10.0, 30.0),
            *token_prices("pb/oc-b", 1.0, 2.0),
            *token_prices("pa/ov-a", 10.0, 30.0),
            *token_prices("pb/ov-b", 1.0, 2.0),
            # A public price: what callers of r-cheap are billed, whoever answers.
            *token_prices("r-cheap", 100.0, 200.0),
        ],
        "keys": [
            {"name": "acme-app", "org": "acme", "value": ACME},
            {"name": "costly-app", "org": "costly", "value": COSTLY},
            {"name": "restricted-app", "org": "restricted", "value": RESTRICTED},
            {"name": "strict-app", "org": "strict", "value": STRICT},
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[GovStack]:
    # This module's config goes through `switchyard apply -f`: the YAML expresses it all.
    with governance_stack(tmp_path_factory.mktemp("gov-routing"), document, apply_with_cli=True) as running:
        yield running


def _spread(stack: GovStack, key: str, model: str, n: int) -> None:
    """n calls, alternating between the two data planes; all must succeed."""
    answers = stack.blast([Call(key=key, model=model, dp=i % 2) for i in range(n)], concurrency=8)
    assert [r.status_code for r in answers] == [200] * n, answers[0].text


def test_priority_sends_everything_to_the_first_target(stack: GovStack) -> None:
    _spread(stack, ACME, "r-priority", 20)
    assert stack.mock.count("pa/prio-a") == 20
    assert stack.mock.count("pb/prio-b") == 0


def test_weighted_distributes_roughly_by_weight(stack: GovStack) -> None:
    _spread(stack, ACME, "r-weighted", 200)
    a, b = stack.mock.count("pa/w-a"), stack.mock.count("pb/w-b")
    assert a + b == 200
    # Weight 3:1 -> 150 expected on pa; 120..180 is ~5 standard deviations either side.
    assert 120 <= a <= 180, f"pa got {a} of 200 calls at weight 3:1"
    assert b > 0


def test_least_latency_prefers_the_faster_target_after_warm_up(stack: GovStack) -> None:
    stack.mock.rule("lat-slow", latency_ms=250)
    stack.mock.rule("lat-fast", latency_ms=5)
    # Warm-up: unmeasured targets are tried first, so each data plane measures both.
    for i in range(8):
        assert stack.chat(ACME, "r-latency", dp=i % 2).status_code == 200
    assert stack.mock.count("pa/lat-slow") >= 1, "the slow target was never measured"
    before_fast = stack.mock.count("pb/lat-fast")
    for i in range(20):
        assert stack.chat(ACME, "r-latency", dp=i % 2).status_code == 200
    fast = stack.mock.count("pb/lat-fast") - before_fast
    assert fast >= 17, f"only {fast} of 20 calls after warm-up went to the faster target"


def test_lowest_cost_prefers_the_cheaper_target(stack: GovStack) -> None:
    _spread(stack, ACME, "r-cheap", 10)
    assert stack.mock.count("pb/cost-b") == 10
    assert stack.mock.count("pa/cost-a") == 0


def test_org_strategy_applies_and_model_strategy_overrides_it(stack: GovStack) -> None:
    # r-orgcost has no strategy of its own: acme (priority) -> pa, costly (lowest_cost) -> pb.
    _spread(stack, ACME, "r-orgcost", 6)
    _spread(stack, COSTLY, "r-orgcost", 6)
    assert stack.mock.count("pa/oc-a") == 6
    assert stack.mock.count("pb/oc-b") == 6
    # r-override says priority: it wins over costly's lowest_cost although pb is cheaper.
    _spread(stack, COSTLY, "r-override", 6)
    assert stack.mock.count("pa/ov-a") == 6
    assert stack.mock.count("pb/ov-b") == 0


def test_billing_uses_the_public_price_else_the_target_price(stack: GovStack) -> None:
    stack.mock.rule("cost-b", prompt_tokens=1000, completion_tokens=500)
    stack.mock.rule("oc-b", prompt_tokens=1000, completion_tokens=500)
    public = stack.event_for(stack.chat(ACME, "r-cheap"))
    # r-cheap has a public price (100 / 200 per million): 1000 in + 500 out = 0.2.
    assert public["provider"] == "pb"
    assert public["cost"] == pytest.approx(0.2)
    answered = stack.chat(COSTLY, "r-orgcost")
    assert answered.status_code == 200
    by_target = stack.event_for(answered)
    # r-orgcost has none: the answering target's price (pb/oc-b: 1 / 2 per million) = 0.002.
    assert by_target["provider"] == "pb"
    assert by_target["cost"] == pytest.approx(0.002)


def test_org_provider_assignment_limits_targets(stack: GovStack) -> None:
    _spread(stack, RESTRICTED, "r-shared", 6)
    assert stack.mock.count("pb/sh-b") == 6
    assert stack.mock.count("pa/sh-a") == 0
    event = stack.event_for(stack.chat(RESTRICTED, "r-shared", dp=1))
    assert event["provider"] == "pb"
    assert [a["provider"] for a in event["attempts"]] == ["pb"]
    # The same model still uses pa for an organization without the restriction.
    assert stack.event_for(stack.chat(ACME, "r-shared"))["provider"] == "pa"


def test_model_without_an_allowed_provider_is_refused_naming_the_org(stack: GovStack) -> None:
    for dp in (0, 1):
        refused = stack.chat(RESTRICTED, "r-only-a", dp=dp)
        assert refused.status_code == 403, refused.text
        error = error_of(refused)
        assert "restricted" in error["message"], error
    assert stack.mock.count("pa/only-a") == 0
    anthropic = stack.messages(RESTRICTED, "r-only-a")
    assert anthropic.status_code == 403
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "permission_error"
    assert stack.chat(ACME, "r-only-a").status_code == 200


def test_disabled_provider_is_never_used(stack: GovStack) -> None:
    _spread(stack, ACME, "r-disabled", 6)
    assert stack.mock.count("pd/dis-d") == 0
    assert stack.mock.count("pb/dis-b") == 6
    event = stack.event_for(stack.chat(ACME, "r-disabled"))
    assert [a["provider"] for a in event["attempts"]] == ["pb"]


def test_target_over_its_quota_overflows_to_the_next(stack: GovStack) -> None:
    answers = [stack.chat(ACME, "r-quota", dp=i % 2) for i in range(6)]
    assert [a.status_code for a in answers] == [200] * 6
    # rpm 3 on pa's target, counted across both data planes; the rest spill to pb.
    assert stack.mock.count("pa/q-a") == 3
    assert stack.mock.count("pb/q-b") == 3
    assert attempt_chain(stack.event_for(answers[-1])) == [("pa", "over_quota"), ("pb", "ok")]


def test_overflow_fail_policy_refuses_instead(stack: GovStack) -> None:
    statuses = [stack.chat(STRICT, "r-quota-fail", dp=i % 2).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert stack.mock.count("pb/qf-b") == 0
