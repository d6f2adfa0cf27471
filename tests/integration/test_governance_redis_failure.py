"""Redis killed mid-test (issue 4 item 8), on a throwaway redis-server: the data
planes neither hang nor crash; a fail-open organization keeps serving with the local
in-memory limiter (which still enforces, per replica), a fail-closed one gets 503 in
the caller's protocol; /readyz reports the degradation; all recovers when Redis is
back. The machine's shared Redis is never touched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.support.governance_stack import (
    GovStack,
    Ports,
    error_of,
    governance_stack,
    mock_provider,
    new_key,
    target,
)
from tests.support.redis_server import ThrowawayRedis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

OPEN = new_key()
OPEN_TIGHT = new_key()
CLOSED = new_key()
# What "does not hang" means here: Redis timeouts are ~0.25 s, then it is skipped.
BOUND = 2.0


def document(ports: Ports) -> dict[str, Any]:
    return {
        "organizations": [
            {"name": "open-org", "policy": {"on_redis_failure": "open"}},
            {"name": "closed-org", "policy": {"on_redis_failure": "closed"}},
        ],
        "providers": [mock_provider(ports, "up"), mock_provider(ports, "up2")],
        "models": [
            {"name": "rf-chat", "targets": [target("up", "rf-echo")]},
            {"name": "rf-failover", "targets": [target("up", "rf-bad", 0), target("up2", "rf-ok", 1)]},
        ],
        "keys": [
            {"name": "open", "org": "open-org", "value": OPEN, "limits": {"rpm": 1000}},
            {"name": "open-tight", "org": "open-org", "value": OPEN_TIGHT, "limits": {"rpm": 3}},
            {"name": "closed", "org": "closed-org", "value": CLOSED, "limits": {"rpm": 1000}},
        ],
    }


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(free_port(), tmp_path_factory.mktemp("throwaway-redis")).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, services: None, redis_server: ThrowawayRedis
) -> Iterator[GovStack]:
    with governance_stack(
        tmp_path_factory.mktemp("gov-redis"),
        document,
        redis_url=redis_server.url,
        dp_env={"SWITCHYARD_RATE_WINDOW_SECONDS": "60"},
    ) as running:
        running.mock.rule("rf-bad", status=500)
        yield running


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = fn(*args, timeout=10, **kwargs)
    return response, time.monotonic() - started


def _degraded(stack: GovStack, dp: int) -> bool:
    text = stack.readyz(dp).text.lower()
    return "redis" in text and any(w in text for w in ("degraded", "down", "unreachable", "unavailable"))


def test_redis_outage_fail_open_fail_closed_and_recovery(
    stack: GovStack, redis_server: ThrowawayRedis
) -> None:
    for dp in (0, 1):
        assert stack.chat(OPEN, "rf-chat", dp=dp).status_code == 200
        assert stack.chat(CLOSED, "rf-chat", dp=dp).status_code == 200
        assert stack.readyz(dp).status_code == 200
        assert not _degraded(stack, dp), stack.readyz(dp).text
    assert any(k.startswith(stack.redis_prefix) for k in stack.redis_keys()), "limits never reached Redis"

    redis_server.kill()

    for dp in (0, 1):
        for _ in range(3):
            served, took = _timed(stack.chat, OPEN, "rf-chat", dp=dp)
            assert served.status_code == 200, served.text
            assert took < BOUND, f"fail-open call took {took:.2f} s with Redis down"
            refused, took = _timed(stack.chat, CLOSED, "rf-chat", dp=dp)
            assert refused.status_code == 503, refused.text
            assert took < BOUND, f"fail-closed call took {took:.2f} s with Redis down"
            assert error_of(refused)["message"]
        anthropic, took = _timed(stack.messages, CLOSED, "rf-chat", dp=dp)
        assert anthropic.status_code == 503, anthropic.text
        assert anthropic.json()["type"] == "error", anthropic.text
        assert took < BOUND
        # Failover (and the breakers' local fallback) keeps working too.
        failover, took = _timed(stack.chat, OPEN, "rf-failover", dp=dp)
        assert failover.status_code == 200, failover.text
        assert took < BOUND

    # Fail-open still enforces limits, locally on each replica: rpm 3 on data plane 0.
    statuses = [stack.chat(OPEN_TIGHT, "rf-chat", dp=0).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses

    for dp in (0, 1):
        assert _degraded(stack, dp), stack.readyz(dp).text
        assert stack.dataplane(dp).popen is not None and stack.dataplane(dp).popen.poll() is None

    event = stack.event_for(stack.chat(CLOSED, "rf-chat", dp=1))
    assert event["status"] == 503

    redis_server.start()
    deadline = time.monotonic() + 15
    pending = {0, 1}
    while pending and time.monotonic() < deadline:
        pending = {dp for dp in pending if stack.chat(CLOSED, "rf-chat", dp=dp).status_code != 200}
        time.sleep(0.2)
    assert not pending, f"data planes {pending} still refuse the fail-closed org after Redis returned"
    for dp in (0, 1):
        assert not _degraded(stack, dp), stack.readyz(dp).text
        assert stack.readyz(dp).status_code == 200
