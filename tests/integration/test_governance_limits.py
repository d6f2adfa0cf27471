"""Distributed rate limits (issue 4 item 4) and shadow mode (item 7) on two data-plane
processes sharing Redis, with a 5-second "minute" (SWITCHYARD_RATE_WINDOW_SECONDS): a
60 rpm key admits 60 +- 1 per window across both replicas (not 120); tpm counts the
estimated input up front and settles with the real usage; organization and model
limits; the concurrency limit; refusals are 429 in the caller's protocol with
Retry-After and x-ratelimit-* headers; a shadowed rule admits and records."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
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
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WINDOW = 5.0

RPM = new_key()
TPM = new_key()
TPM_SMALL = new_key()
ORG_A = new_key()
ORG_B = new_key()
MODEL_CALLER = new_key()
CONCURRENT = new_key()
SHADOW = new_key()


def _model(name: str, upstream: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "targets": [target("up", upstream)], **extra}


def document(ports: Ports) -> dict[str, Any]:
    return {
        "organizations": [
            {"name": "acme"},
            {"name": "orgcap", "policy": {"limits": {"rpm": 20}}},
        ],
        "providers": [mock_provider(ports, "up")],
        "models": [
            _model("l-chat", "l-echo"),
            _model("l-tokens", "l-tokens"),
            _model("l-capped", "l-capped", limits={"rpm": 10}),
            _model("l-slow", "l-slow"),
        ],
        "keys": [
            {"name": "rpm", "org": "acme", "value": RPM, "limits": {"rpm": 60}},
            {"name": "tpm", "org": "acme", "value": TPM, "limits": {"tpm": 1000}},
            {"name": "tpm-small", "org": "acme", "value": TPM_SMALL, "limits": {"tpm": 300}},
            {"name": "org-a", "org": "orgcap", "value": ORG_A},
            {"name": "org-b", "org": "orgcap", "value": ORG_B},
            {"name": "model-caller", "org": "acme", "value": MODEL_CALLER},
            {"name": "concurrent", "org": "acme", "value": CONCURRENT, "limits": {"concurrency": 2}},
            {"name": "shadow", "org": "acme", "value": SHADOW, "limits": {"rpm": 3}, "shadow": ["rpm"]},
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[GovStack]:
    with governance_stack(
        tmp_path_factory.mktemp("gov-limits"),
        document,
        dp_env={"SWITCHYARD_RATE_WINDOW_SECONDS": str(WINDOW)},
    ) as running:
        yield running


def _timed_blast(stack: GovStack, calls: list[Call], concurrency: int = 16) -> list[httpx.Response]:
    started = time.monotonic()
    answers = stack.blast(calls, concurrency=concurrency)
    elapsed = time.monotonic() - started
    # Otherwise part of the burst would fall into the next window: the count would be moot.
    assert elapsed < WINDOW * 0.8, f"the burst took {elapsed:.2f} s, too long for a {WINDOW} s window"
    return answers


def _assert_openai_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = error_of(response)
    assert error["type"] in ("rate_limit_error", "requests", "tokens"), error
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None and 1 <= float(retry_after) <= WINDOW + 1, response.headers


def test_rpm_is_shared_by_both_dataplanes(stack: GovStack) -> None:
    calls = [Call(key=RPM, model="l-chat", dp=i % 2) for i in range(150)]
    answers = _timed_blast(stack, calls)
    counts = status_counts(answers)
    assert set(counts) <= {200, 429}, counts
    assert 59 <= counts[200] <= 61, f"60 rpm admitted {counts[200]} of 150 across two data planes"
    # Both replicas admitted part of it (the limit is shared, not per replica).
    by_dp = Counter(c.dp for c, a in zip(calls, answers, strict=True) if a.status_code == 200)
    assert by_dp[0] > 0 and by_dp[1] > 0, by_dp

    ok = next(a for a in answers if a.status_code == 200)
    assert ok.headers.get("x-ratelimit-limit-requests") == "60", ok.headers
    assert "x-ratelimit-remaining-requests" in ok.headers
    refused = next(a for a in answers if a.status_code == 429)
    _assert_openai_429(refused)
    assert refused.headers.get("x-ratelimit-limit-requests") == "60"
    assert refused.headers.get("x-ratelimit-remaining-requests") == "0"
    assert refused.headers.get("x-ratelimit-reset-requests"), refused.headers
    event = stack.event_for(refused)
    assert (event["status"], event["refused_by"]) == (429, "key.rpm")
    assert event["attempts"] == []

    # The Anthropic route refuses in its own shape.
    anthropic = stack.messages(RPM, "l-chat", dp=1)
    assert anthropic.status_code == 429, anthropic.text
    body = anthropic.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error", body
    assert anthropic.headers.get("retry-after")
    assert anthropic.headers.get("x-ratelimit-limit-requests") == "60", anthropic.headers

    # A window later the key is admitted again.
    time.sleep(WINDOW + 0.5)
    assert stack.chat(RPM, "l-chat", dp=0).status_code == 200
    assert stack.chat(RPM, "l-chat", dp=1).status_code == 200


def test_tpm_settles_with_the_real_usage(stack: GovStack) -> None:
    # Each call really costs 100 + 100 tokens: 1000 tpm admits 5 calls in a window.
    stack.mock.rule("l-tokens", prompt_tokens=100, completion_tokens=100)
    statuses = []
    refused: httpx.Response | None = None
    for i in range(8):
        answer = stack.chat(TPM, "l-tokens", dp=i % 2)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            refused = answer
        time.sleep(0.15)  # settlement happens after the answer
    assert statuses.count(200) in (5, 6), statuses
    assert statuses[:5] == [200] * 5, statuses
    assert refused is not None
    assert refused.headers.get("x-ratelimit-limit-tokens") == "1000", refused.headers
    assert refused.headers.get("x-ratelimit-remaining-tokens") is not None
    assert refused.headers.get("x-ratelimit-reset-tokens")
    assert stack.event_for(refused)["refused_by"] == "key.tpm"


def test_tpm_counts_the_estimated_input_up_front(stack: GovStack) -> None:
    before = stack.mock.count("l-echo")
    # ~1000 words of input cannot fit a 300 tpm window: refused before any upstream call.
    refused = stack.chat(TPM_SMALL, "l-chat", content="word " * 1000)
    assert refused.status_code == 429, refused.text
    assert stack.mock.count("l-echo") == before
    assert stack.event_for(refused)["refused_by"] == "key.tpm"
    assert stack.chat(TPM_SMALL, "l-chat", content="short").status_code == 200


def test_org_rpm_is_shared_by_its_keys(stack: GovStack) -> None:
    calls = [Call(key=(ORG_A, ORG_B)[i % 2], model="l-chat", dp=(i // 2) % 2) for i in range(50)]
    counts = status_counts(_timed_blast(stack, calls))
    assert 19 <= counts[200] <= 21, f"org rpm 20 admitted {counts[200]} of 50"
    refused = stack.chat(ORG_A, "l-chat")
    assert refused.status_code == 429
    assert stack.event_for(refused)["refused_by"] == "org.rpm"


def test_model_rpm_caps_the_model_only(stack: GovStack) -> None:
    calls = [Call(key=MODEL_CALLER, model="l-capped", dp=i % 2) for i in range(30)]
    counts = status_counts(_timed_blast(stack, calls))
    assert 9 <= counts[200] <= 11, f"model rpm 10 admitted {counts[200]} of 30"
    refused = stack.chat(MODEL_CALLER, "l-capped")
    assert refused.status_code == 429
    assert stack.event_for(refused)["refused_by"] == "model.rpm"
    # Another model of the same organization is not affected.
    assert stack.chat(MODEL_CALLER, "l-chat").status_code == 200


def test_concurrency_limit(stack: GovStack) -> None:
    stack.mock.rule("l-slow", latency_ms=1500)
    stack.mock.reset_counts()
    calls = [Call(key=CONCURRENT, model="l-slow", dp=i % 2) for i in range(6)]
    answers = stack.blast(calls, concurrency=6)
    counts = status_counts(answers)
    assert counts == Counter({200: 2, 429: 4}), counts
    assert stack.mock.max_inflight("l-slow") == 2
    refused = next(a for a in answers if a.status_code == 429)
    assert stack.event_for(refused)["refused_by"] == "key.concurrency"
    # The slots were released when those calls finished.
    stack.mock.rule("l-slow", latency_ms=0)
    assert stack.chat(CONCURRENT, "l-slow").status_code == 200
    assert stack.chat(CONCURRENT, "l-slow", dp=1).status_code == 200


def test_shadowed_rpm_admits_and_records(stack: GovStack) -> None:
    answers = [stack.chat(SHADOW, "l-chat", dp=i % 2) for i in range(6)]
    assert [a.status_code for a in answers] == [200] * 6
    events = [stack.event_for(a) for a in answers]
    assert all(e["refused_by"] is None for e in events)
    shadowed = [e for e in events if any("rpm" in rule for rule in e["shadow_refusals"])]
    # rpm 3: the first three are within the limit, the other three would have been refused.
    assert len(shadowed) == 3, [e["shadow_refusals"] for e in events]
    assert all(e["shadow_refusals"] == [] for e in events[:3])
