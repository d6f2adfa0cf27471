"""Circuit breakers (issue 4 item 3) on two data-plane processes sharing Redis: N
consecutive failures (or 429s) open a breaker, after which calls skip the target
(attempt outcome breaker_open) on BOTH data planes; after the cooldown exactly one
half-open probe decides (success closes, failure re-opens); the state is visible at
`GET /api/v1/breakers`; changing the provider's credential or URL resets it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.governance_stack import (
    Call,
    GovStack,
    Ports,
    attempt_chain,
    governance_stack,
    mock_provider,
    new_key,
    target,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACME = new_key()
STICKY = new_key()
STRICT = new_key()
THRESHOLD = 3
COOLDOWN = 2.0


def document(ports: Ports) -> dict[str, Any]:
    return {
        "organizations": [
            {"name": "acme", "policy": {"breaker": {"failures": THRESHOLD, "cooldown_seconds": COOLDOWN}}},
            {"name": "sticky", "policy": {"breaker": {"failures": 2, "cooldown_seconds": 60}}},
            {
                "name": "strict",
                "policy": {"overflow": "fail", "breaker": {"failures": 2, "cooldown_seconds": 60}},
            },
        ],
        "providers": [
            mock_provider(ports, "pa"),
            mock_provider(ports, "pb"),
            mock_provider(ports, "pr"),
        ],
        "models": [
            {"name": "b-open", "targets": [target("pa", "bo-a", 0), target("pb", "bo-b", 1)]},
            {"name": "b-probe", "targets": [target("pa", "bp-a", 0), target("pb", "bp-b", 1)]},
            {"name": "b-429", "targets": [target("pa", "b429-a", 0), target("pb", "b429-b", 1)]},
            {"name": "b-reset", "targets": [target("pr", "br-a", 0), target("pb", "br-b", 1)]},
            {"name": "b-strict", "targets": [target("pa", "bs-a", 0), target("pb", "bs-b", 1)]},
        ],
        "keys": [
            {"name": "acme-app", "org": "acme", "value": ACME},
            {"name": "sticky-app", "org": "sticky", "value": STICKY},
            {"name": "strict-app", "org": "strict", "value": STRICT},
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[GovStack]:
    with governance_stack(tmp_path_factory.mktemp("gov-breakers"), document) as running:
        yield running


def _chain(stack: GovStack, key: str, model: str, dp: int) -> list[tuple[str, str]]:
    answered = stack.chat(key, model, dp=dp)
    assert answered.status_code == 200, answered.text
    return attempt_chain(stack.event_for(answered))


def _breakers(stack: GovStack, provider: str) -> list[dict[str, Any]]:
    response = stack.api("GET", "/breakers", params={"provider": provider})
    assert response.status_code == 200, response.text
    data = response.json()
    items = data["data"] if isinstance(data, dict) else data
    assert all(b["provider"] == provider for b in items), items
    return list(items)


def _state(stack: GovStack, provider: str, model: str) -> str:
    states = [b["state"] for b in _breakers(stack, provider) if b["upstream_model"] == model]
    return states[-1] if states else "closed"


def _open(stack: GovStack, key: str, model: str, provider: str, failures: int) -> None:
    """Fail `failures` calls, alternating data planes: the count is shared in Redis."""
    for i in range(failures):
        assert _chain(stack, key, model, dp=i % 2)[0] == (provider, "error")


def test_breaker_opens_and_both_dataplanes_skip_the_target(stack: GovStack) -> None:
    stack.mock.rule("bo-a", status=500)
    _open(stack, ACME, "b-open", "pa", THRESHOLD)
    assert stack.mock.count("pa/bo-a") == THRESHOLD
    time.sleep(0.6)  # each data plane refreshes its view of the breakers every ~200 ms
    for dp in (0, 1, 0, 1):
        assert _chain(stack, ACME, "b-open", dp) == [("pa", "breaker_open"), ("pb", "ok")]
    assert stack.mock.count("pa/bo-a") == THRESHOLD, "a call reached the target of an open breaker"
    (entry,) = [b for b in _breakers(stack, "pa") if b["upstream_model"] == "bo-a"]
    assert entry["state"] == "open"
    assert entry["failures"] >= THRESHOLD
    assert entry["open_until"] is not None

    # Cooldown over and the target healthy again: the half-open probe closes it.
    stack.mock.clear("bo-a")
    time.sleep(COOLDOWN + 0.3)
    assert _state(stack, "pa", "bo-a") == "half_open"
    assert _chain(stack, ACME, "b-open", 1) == [("pa", "ok")]
    time.sleep(0.6)
    for dp in (0, 1):
        assert _chain(stack, ACME, "b-open", dp) == [("pa", "ok")]
    assert _state(stack, "pa", "bo-a") == "closed"


def test_only_one_half_open_probe_and_a_failed_probe_reopens(stack: GovStack) -> None:
    stack.mock.rule("bp-a", status=502)
    _open(stack, ACME, "b-probe", "pa", THRESHOLD)
    time.sleep(COOLDOWN + 0.4)
    before = stack.mock.count("pa/bp-a")
    # Many calls at once, on both data planes, right after the cooldown: one probes.
    answers = stack.blast([Call(key=ACME, model="b-probe", dp=i % 2) for i in range(10)], concurrency=10)
    assert [a.status_code for a in answers] == [200] * 10
    assert stack.mock.count("pa/bp-a") - before == 1, "more than one replica probed the half-open target"
    # The probe failed: open again for a full cooldown.
    time.sleep(0.6)
    for dp in (0, 1):
        assert _chain(stack, ACME, "b-probe", dp) == [("pa", "breaker_open"), ("pb", "ok")]
    assert _state(stack, "pa", "bp-a") == "open"


def test_429s_open_the_breaker_too(stack: GovStack) -> None:
    stack.mock.rule("b429-a", status=429, retry_after=1)
    for i in range(THRESHOLD):
        first = _chain(stack, ACME, "b-429", dp=i % 2)[0]
        assert first[0] == "pa" and first[1] in ("rate_limited", "error"), first
    time.sleep(0.6)
    assert _chain(stack, ACME, "b-429", 0) == [("pa", "breaker_open"), ("pb", "ok")]
    assert _state(stack, "pa", "b429-a") == "open"


def _provider_doc(stack: GovStack, **changes: Any) -> dict[str, Any]:
    return {"providers": [mock_provider(stack.ports, "pr", **changes)]}


def test_credential_or_url_change_resets_the_breakers(stack: GovStack) -> None:
    stack.mock.rule("br-a", status=500)
    _open(stack, STICKY, "b-reset", "pr", 2)
    time.sleep(0.6)
    assert _chain(stack, STICKY, "b-reset", 1)[0] == ("pr", "breaker_open")
    (old,) = [b for b in _breakers(stack, "pr") if b["state"] == "open"]

    # New credential -> new breaker epoch -> a fresh, closed breaker (cooldown is 60 s).
    stack.apply(_provider_doc(stack, api_key="sk-pr-rotated"))
    for dp in (0, 1):
        assert _chain(stack, STICKY, "b-reset", dp)[0] == ("pr", "error")
    epochs = {b["epoch"] for b in _breakers(stack, "pr")}
    assert len(epochs - {old["epoch"]}) == 1, epochs

    # Open it again, then change the URL (same mock, other spelling): fresh again.
    time.sleep(0.6)
    assert _chain(stack, STICKY, "b-reset", 0)[0] == ("pr", "breaker_open")
    stack.apply(
        _provider_doc(stack, api_key="sk-pr-rotated", base_url=f"http://localhost:{stack.ports.mock}/v1")
    )
    assert _chain(stack, STICKY, "b-reset", 1)[0] == ("pr", "error")
    assert _chain(stack, STICKY, "b-reset", 0)[0] == ("pr", "error")
    time.sleep(0.6)
    assert _chain(stack, STICKY, "b-reset", 1)[0] == ("pr", "breaker_open")

    # Disabled, then enabled again: meanwhile calls go to pb only, then a fresh breaker.
    stack.apply(_provider_doc(stack, api_key="sk-pr-rotated", enabled=False))
    assert _chain(stack, STICKY, "b-reset", 0) == [("pb", "ok")]
    stack.apply(_provider_doc(stack, api_key="sk-pr-rotated", enabled=True))
    assert _chain(stack, STICKY, "b-reset", 1)[0] == ("pr", "error")

    # Healthy again: the fresh breaker lets calls through.
    stack.mock.clear("br-a")
    assert _chain(stack, STICKY, "b-reset", 0) == [("pr", "ok")]


def test_open_breaker_with_overflow_fail_answers_503(stack: GovStack) -> None:
    stack.mock.rule("bs-a", status=500)
    # Upstream errors still fail over (that is failover, not overflow)...
    _open(stack, STRICT, "b-strict", "pa", 2)
    time.sleep(0.6)
    # ...but once the breaker is open, the policy says fail rather than spill over.
    for dp in (0, 1):
        refused = stack.chat(STRICT, "b-strict", dp=dp)
        assert refused.status_code == 503, refused.text
        assert "error" in refused.json()
    anthropic = stack.messages(STRICT, "b-strict")
    assert anthropic.status_code == 503
    assert anthropic.json()["type"] == "error"
    assert stack.mock.count("pb/bs-b") == 2
