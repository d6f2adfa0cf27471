"""Failover across targets (issue 4 item 2) on two data-plane processes: each error
class (connect error, timeout/stall, 429, 5xx, dropped connection) moves the call to
the next target and the attempt chain lands in the usage event; a 400 is not failed
over; the retry budget, the deadline and a narrowed `retry.on` are honoured; streams
fail over before their first byte but not after it. Breakers are off in these orgs so
that repeated failures never open one (breakers have their own module)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
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
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACME = new_key()
BUDGETED = new_key()
DEADLINE = new_key()
ONLY_5XX = new_key()

NO_BREAKER = {"failures": 0}


def _model(name: str, *targets: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "targets": list(targets)}


def document(ports: Ports) -> dict[str, Any]:
    return {
        "organizations": [
            {"name": "acme", "policy": {"breaker": NO_BREAKER}},
            {"name": "budgeted", "policy": {"breaker": NO_BREAKER, "retry": {"max_attempts": 2}}},
            {"name": "deadline", "policy": {"breaker": NO_BREAKER, "retry": {"deadline_seconds": 1.0}}},
            {"name": "only5xx", "policy": {"breaker": NO_BREAKER, "retry": {"on": ["5xx"]}}},
        ],
        "providers": [
            mock_provider(ports, "ok"),
            mock_provider(ports, "bad"),
            mock_provider(ports, "tight", timeout_seconds=0.5),
            {
                "slug": "dead",
                "api_format": "openai",
                "base_url": ports.closed_url,
                "api_key": "sk-dead",
                "connect_timeout_seconds": 1,
            },
        ],
        "models": [
            _model("fo-connect", target("dead", "fc-dead", 0), target("ok", "fc-ok", 1)),
            _model("fo-timeout", target("tight", "ft-stall", 0), target("ok", "ft-ok", 1)),
            _model("fo-429", target("bad", "f429", 0), target("ok", "f429-ok", 1)),
            _model("fo-5xx", target("bad", "f5xx", 0), target("ok", "f5xx-ok", 1)),
            _model("fo-drop", target("bad", "fdrop", 0), target("ok", "fdrop-ok", 1)),
            _model("fo-400", target("bad", "f400", 0), target("ok", "f400-ok", 1)),
            _model(
                "fo-chain",
                target("bad", "c1", 0),
                target("bad", "c2", 1),
                target("bad", "c3", 2),
                target("ok", "c-ok", 3),
            ),
            _model("fo-deadline", target("ok", "dl-slow", 0), target("ok", "dl-ok", 1)),
            _model("fo-stream-drop", target("bad", "fsd", 0), target("ok", "fsd-ok", 1)),
            _model("fo-stream-stall", target("tight", "fss", 0), target("ok", "fss-ok", 1)),
            _model("fo-midstream", target("bad", "fm", 0), target("ok", "fm-ok", 1)),
        ],
        "keys": [
            {"name": "acme-app", "org": "acme", "value": ACME},
            {"name": "budgeted-app", "org": "budgeted", "value": BUDGETED},
            {"name": "deadline-app", "org": "deadline", "value": DEADLINE},
            {"name": "only5xx-app", "org": "only5xx", "value": ONLY_5XX},
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[GovStack]:
    with governance_stack(tmp_path_factory.mktemp("gov-failover"), document) as running:
        mock = running.mock
        mock.rule("ft-stall", stall_ms=3000)
        mock.rule("f429", status=429, retry_after=1)
        mock.rule("f5xx", status=503)
        mock.rule("fdrop", drop=True)
        mock.rule("f400", status=400)
        for name in ("c1", "c2", "c3"):
            mock.rule(name, status=500)
        mock.rule("dl-slow", stall_ms=3000)
        mock.rule("fsd", drop_stream=True)
        mock.rule("fss", stall_stream_ms=3000)
        mock.rule("fm", abort_stream_after=2)
        yield running


@pytest.mark.parametrize(
    ("model", "first_provider", "first_outcomes", "first_status"),
    [
        ("fo-connect", "dead", {"unreachable"}, None),
        ("fo-timeout", "tight", {"timeout"}, None),
        ("fo-429", "bad", {"rate_limited", "error"}, 429),
        ("fo-5xx", "bad", {"error"}, 503),
        ("fo-drop", "bad", {"unreachable", "error"}, None),
    ],
)
def test_each_error_class_fails_over_with_the_attempt_chain(
    stack: GovStack, model: str, first_provider: str, first_outcomes: set[str], first_status: int | None
) -> None:
    for dp in (0, 1):
        answered = stack.chat(ACME, model, dp=dp, content="fail me over")
        # The client never sees the first target's error: the second one answered.
        assert answered.status_code == 200, answered.text
        assert answered.json()["choices"][0]["message"]["content"] == "echo: fail me over"
        event = stack.event_for(answered)
        assert event["status"] == 200
        assert event["provider"] == "ok"
        attempts = event["attempts"]
        assert len(attempts) == 2, attempts
        assert attempts[0]["provider"] == first_provider
        assert attempts[0]["outcome"] in first_outcomes, attempts
        if first_status is not None:
            assert attempts[0]["status"] == first_status, attempts
        assert attempts[0]["ms"] >= 0
        assert (attempts[1]["provider"], attempts[1]["outcome"]) == ("ok", "ok")
        if model == "fo-timeout":
            # The stalled attempt was cut at the provider's 0.5 s timeout, not at 3 s.
            assert 400 <= attempts[0]["ms"] < 2500, attempts


def test_anthropic_caller_fails_over_too(stack: GovStack) -> None:
    answered = stack.messages(ACME, "fo-5xx", dp=1, content="from claude")
    assert answered.status_code == 200, answered.text
    assert answered.json()["type"] == "message"
    assert attempt_chain(stack.event_for(answered)) == [("bad", "error"), ("ok", "ok")]


def test_non_retryable_400_is_returned_at_once(stack: GovStack) -> None:
    before = stack.mock.count("ok/f400-ok")
    refused = stack.chat(ACME, "fo-400")
    assert refused.status_code == 400, refused.text
    assert "mock upstream error 400" in error_of(refused)["message"]
    assert stack.mock.count("ok/f400-ok") == before
    event = stack.event_for(refused)
    assert event["status"] == 400
    assert len(event["attempts"]) == 1 and event["attempts"][0]["status"] == 400


def test_all_targets_tried_without_a_budget(stack: GovStack) -> None:
    answered = stack.chat(ACME, "fo-chain")
    assert answered.status_code == 200, answered.text
    assert attempt_chain(stack.event_for(answered)) == [
        ("bad", "error"),
        ("bad", "error"),
        ("bad", "error"),
        ("ok", "ok"),
    ]


def test_retry_budget_caps_the_attempts(stack: GovStack) -> None:
    before = {m: stack.mock.count(m) for m in ("c1", "c2", "c3", "c-ok")}
    refused = stack.chat(BUDGETED, "fo-chain", dp=1)
    assert refused.status_code >= 500, refused.text
    after = {m: stack.mock.count(m) for m in ("c1", "c2", "c3", "c-ok")}
    assert {m: after[m] - before[m] for m in after} == {"c1": 1, "c2": 1, "c3": 0, "c-ok": 0}
    event = stack.event_for(refused)
    assert len(event["attempts"]) == 2, event["attempts"]


def test_deadline_bounds_the_whole_call(stack: GovStack) -> None:
    before = stack.mock.count("dl-ok")
    started = time.monotonic()
    refused = stack.chat(DEADLINE, "fo-deadline")
    elapsed = time.monotonic() - started
    # The 1 s deadline caps the first attempt's read timeout and leaves no time for more.
    assert refused.status_code in (502, 503, 504), refused.text
    assert elapsed < 2.5, f"the call took {elapsed:.2f} s with a 1 s deadline"
    assert "error" in refused.json()
    assert stack.mock.count("dl-ok") == before
    # Without the deadline (acme), the next target would have answered after the stall.


def test_retry_on_narrowed_to_5xx_passes_429_back(stack: GovStack) -> None:
    before = stack.mock.count("ok/f429-ok")
    throttled = stack.chat(ONLY_5XX, "fo-429")
    assert throttled.status_code == 429, throttled.text
    assert stack.mock.count("ok/f429-ok") == before
    # 5xx is still in the set: that one fails over.
    assert stack.chat(ONLY_5XX, "fo-5xx").status_code == 200


def _stream_text(body: str) -> tuple[str, bool]:
    import json

    text = ""
    done = False
    for line in body.splitlines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            done = True
            continue
        chunk = json.loads(data)
        for choice in chunk.get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
    return text, done


@pytest.mark.parametrize(("model", "first"), [("fo-stream-drop", "bad"), ("fo-stream-stall", "tight")])
def test_stream_fails_over_before_the_first_byte(stack: GovStack, model: str, first: str) -> None:
    for dp in (0, 1):
        answered = stack.chat(ACME, model, dp=dp, stream=True, content="stream me")
        assert answered.status_code == 200, answered.text
        text, done = _stream_text(answered.text)
        assert (text, done) == ("echo: stream me", True), answered.text
        event = stack.event_for(answered)
        assert event["stream"] is True
        assert [a["provider"] for a in event["attempts"]] == [first, "ok"], event["attempts"]
        assert event["attempts"][0]["outcome"] != "ok"


def test_stream_is_not_failed_over_after_the_first_byte(stack: GovStack) -> None:
    before = stack.mock.count("fm-ok")
    call = Call(key=ACME, model="fo-midstream", stream=True, content="one two three four")
    path, headers, body = stack.request_parts(call)
    received = b""
    with httpx.stream("POST", stack.dp_url(0) + path, json=body, headers=headers, timeout=20) as answered:
        # The headers and the first chunks were relayed: the stream ends broken, no retry.
        assert answered.status_code == 200
        try:
            for chunk in answered.iter_bytes():
                received += chunk
        except httpx.HTTPError:
            pass  # the data plane may cut the connection rather than end the stream
    text, done = _stream_text(received.decode())
    assert not done, received
    assert text.startswith("echo:") and text != "echo: one two three four", received
    assert stack.mock.count("fm-ok") == before
    event = stack.event_for(answered)
    assert [a["provider"] for a in event["attempts"]] == ["bad"]
