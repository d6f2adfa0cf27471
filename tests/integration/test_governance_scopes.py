"""Key scopes (issue 4 item 6) on two data-plane processes: capability, model
allow-list, expiry, enabled flag and client IP allow-list refusals are 403 (401 for
disabled / expired keys is accepted too) naming what is missing, in the caller's
protocol; scope changes and disabling apply on both data planes within 1 s; a shadowed
scope rule admits and records (item 7)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.governance_stack import (
    GovStack,
    Ports,
    error_of,
    governance_stack,
    mock_provider,
    new_key,
    target,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LLM_ONLY = new_key()
WITH_EMBEDDING = new_key()
ALLOW_LIST = new_key()
EXPIRED = new_key()
DISABLED = new_key()
IP_DENIED = new_key()
IP_ALLOWED = new_key()
SHADOW_SCOPES = new_key()
CHANGING = new_key()


def _key(name: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "org": "acme", "value": value, **extra}


def document(ports: Ports) -> dict[str, Any]:
    return {
        "organizations": [{"name": "acme"}],
        "providers": [mock_provider(ports, "up")],
        "models": [
            {"name": "s-chat", "targets": [target("up", "s-chat")]},
            {"name": "s-other", "targets": [target("up", "s-other")]},
            {"name": "s-embed", "capability": "embedding", "targets": [target("up", "s-embed")]},
        ],
        "keys": [
            _key("llm-only", LLM_ONLY, scopes=["llm"]),
            _key("with-embedding", WITH_EMBEDDING, scopes=["llm", "embedding"]),
            _key("allow-list", ALLOW_LIST, models=["s-chat"]),
            _key("expired", EXPIRED, expires_at="2020-01-01T00:00:00Z"),
            _key("disabled", DISABLED, enabled=False),
            _key("ip-denied", IP_DENIED, allowed_ips=["10.0.0.0/8", "fd00::/8"]),
            _key("ip-allowed", IP_ALLOWED, allowed_ips=["127.0.0.0/8", "::1/128"]),
            _key("shadow-scopes", SHADOW_SCOPES, scopes=["llm"], shadow=["scopes"]),
            _key("changing", CHANGING, scopes=["llm"]),
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[GovStack]:
    with governance_stack(tmp_path_factory.mktemp("gov-scopes"), document) as running:
        yield running


def _embed(stack: GovStack, key: str, dp: int = 0) -> httpx.Response:
    return httpx.post(
        f"{stack.dp_url(dp)}/v1/embeddings",
        json={"model": "s-embed", "input": "hello"},
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    )


def _refused(response: httpx.Response, *needles: str, statuses: tuple[int, ...] = (403,)) -> str:
    assert response.status_code in statuses, response.text
    message = str(error_of(response)["message"])
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def test_capability_scope(stack: GovStack) -> None:
    for dp in (0, 1):
        _refused(_embed(stack, LLM_ONLY, dp), "embedding")
        assert _embed(stack, WITH_EMBEDDING, dp).status_code == 200
    assert stack.mock.count("s-embed") == 2


def test_model_allow_list(stack: GovStack) -> None:
    assert stack.chat(ALLOW_LIST, "s-chat").status_code == 200
    _refused(stack.chat(ALLOW_LIST, "s-other", dp=1), "s-other")
    anthropic = stack.messages(ALLOW_LIST, "s-other")
    assert anthropic.status_code == 403
    assert anthropic.json()["error"]["type"] == "permission_error"


def test_expired_and_disabled_keys(stack: GovStack) -> None:
    for dp in (0, 1):
        _refused(stack.chat(EXPIRED, "s-chat", dp=dp), "expired", statuses=(401, 403))
        _refused(stack.chat(DISABLED, "s-chat", dp=dp), "disabled", statuses=(401, 403))
    assert stack.mock.count("s-chat") <= 1  # only the allow-list test's call


def test_client_ip_allow_list(stack: GovStack) -> None:
    for dp in (0, 1):
        _refused(stack.chat(IP_DENIED, "s-chat", dp=dp), "127.0.0.1")
        assert stack.chat(IP_ALLOWED, "s-chat", dp=dp).status_code == 200
    event = stack.event_for(stack.chat(IP_DENIED, "s-chat"))
    assert event["status"] == 403
    assert event["refused_by"] is not None and "ip" in event["refused_by"], event["refused_by"]


def test_shadowed_scope_admits_and_records(stack: GovStack) -> None:
    answered = _embed(stack, SHADOW_SCOPES)
    assert answered.status_code == 200, answered.text
    events = stack.tap.wait(1, key_name="shadow-scopes", model="s-embed")
    assert any("scope" in rule for rule in events[-1]["shadow_refusals"]), events[-1]


def _until_both(stack: GovStack, check: Callable[[int], bool], limit: float = 1.0) -> float:
    """Seconds until `check(dp)` holds on both data planes (fails past `limit` + slack)."""
    started = time.monotonic()
    pending = {0, 1}
    while pending and time.monotonic() - started < limit + 2:
        pending = {dp for dp in pending if not check(dp)}
        if pending:
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert not pending, f"data planes {pending} still did not apply the change after {elapsed:.2f} s"
    return elapsed


def test_scope_change_and_disable_apply_within_one_second(stack: GovStack) -> None:
    for dp in (0, 1):
        assert stack.chat(CHANGING, "s-chat", dp=dp).status_code == 200

    def change(**fields: Any) -> None:
        stack.apply({"keys": [_key("changing", CHANGING, **fields)]}, wait=False)

    change(scopes=["embedding"])
    took = _until_both(stack, lambda dp: stack.chat(CHANGING, "s-chat", dp=dp).status_code == 403)
    assert took <= 1.0, f"scope removal took {took:.2f} s"
    assert _embed(stack, CHANGING, 1).status_code == 200

    change(scopes=["llm"])
    took = _until_both(stack, lambda dp: stack.chat(CHANGING, "s-chat", dp=dp).status_code == 200)
    assert took <= 1.0, f"scope grant took {took:.2f} s"

    change(scopes=["llm"], enabled=False)
    took = _until_both(stack, lambda dp: stack.chat(CHANGING, "s-chat", dp=dp).status_code in (401, 403))
    assert took <= 1.0, f"disabling took {took:.2f} s"
    _refused(stack.chat(CHANGING, "s-chat"), "disabled", statuses=(401, 403))

    change(scopes=["llm"], enabled=True)
    _until_both(stack, lambda dp: stack.chat(CHANGING, "s-chat", dp=dp).status_code == 200)
    change(scopes=["llm"], revoked=True)
    took = _until_both(stack, lambda dp: stack.chat(CHANGING, "s-chat", dp=dp).status_code == 401)
    assert took <= 1.0, f"revocation took {took:.2f} s"
