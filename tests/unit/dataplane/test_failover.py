"""Failover through the data-plane app (attempt_loop.py): each failure class, the org's
retry policy (classes, exact statuses, budget, deadline), streams before their first
byte, breakers skipping a target and their half-open probe, overflow, target quotas, and
the attempt chain of the usage event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import yaml
from switchyard_common.config_schema import parse_config
from switchyard_common.proto.controlplane_pb2 import RetryPolicy as RetryPolicyMessage
from switchyard_common.proto.controlplane_pb2 import Snapshot
from switchyard_common.usage import UsageEvent
from switchyard_dataplane.app import DataPlaneApp, create_app
from switchyard_dataplane.breakers import Breakers, LocalBreakerStore
from switchyard_dataplane.failover import retry_policy
from switchyard_dataplane.image_inline import any_host
from switchyard_dataplane.index import IndexHolder, Target, build_index
from switchyard_dataplane.metrics import Metrics
from switchyard_dataplane.upstream import HttpxUpstream
from switchyard_dataplane.usage_events import CallRecord

from .conftest import AUTH, KEY, SECRET, RecordingPublisher, chat_body, make_snapshot, openai_completion

pytestmark = pytest.mark.timeout(30)

URLS = {"a": "http://a.test/v1", "b": "http://b.test/v1", "c": "http://c.test/v1"}
SSE = {"content-type": "text/event-stream"}
ANTHROPIC = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
MESSAGES = {"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class TimedTransport(httpx.AsyncBaseTransport):
    """httpx.MockTransport ignores timeouts; this one applies the request's read
    timeout to the handler, as a real connection would."""

    def __init__(self, handler: Callable[[httpx.Request], Any]) -> None:
        self._handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        read = request.extensions.get("timeout", {}).get("read")
        await request.aread()
        try:
            async with asyncio.timeout(read):
                result = self._handler(request)
                if not isinstance(result, httpx.Response):
                    result = await result
        except TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None
        return result


class FailingStream(httpx.AsyncByteStream):
    """A 200 stream that breaks after `chunks` (before any byte when empty)."""

    def __init__(self, chunks: list[bytes], error: Exception) -> None:
        self._chunks = chunks
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        raise self._error


@dataclass
class Gw:
    app: DataPlaneApp
    client: httpx.AsyncClient
    publisher: RecordingPublisher
    metrics: Metrics
    breakers: Breakers
    hosts: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[UsageEvent]:
        return self.publisher.events

    def chain(self, n: int = -1) -> list[tuple[str, str, int | None]]:
        return [(a.provider, a.outcome, a.status) for a in self.events[n].attempts]

    def failovers(self, provider: str, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "switchyard_dataplane_failovers_total", {"provider": provider, "reason": reason}
        )
        return value or 0.0


@pytest.fixture
async def gateway() -> AsyncIterator[Callable[..., Gw]]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Callable[[httpx.Request], Any], snap: Snapshot, clock: Clock | None = None) -> Gw:
        publisher = RecordingPublisher()
        metrics = Metrics()
        breakers = Breakers(LocalBreakerStore(), metrics, clock=clock or time.time)
        hosts: list[str] = []

        def recording(request: httpx.Request) -> Any:
            hosts.append(request.url.host.split(".")[0])
            return handler(request)

        app = create_app(
            holder=IndexHolder(build_index(snap, secret_key=SECRET, env={})),
            upstream=HttpxUpstream(TimedTransport(recording)),
            publisher=publisher,
            metrics=metrics,
            image_guard=any_host,
            breakers=breakers,
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 5555)), base_url="http://gw.test"
        )
        clients.append(client)
        return Gw(app, client, publisher, metrics, breakers, hosts)

    yield make
    for client in clients:
        await client.aclose()


def snapshot(
    providers: str = "ab",
    *,
    retry_on: list[str] | None = None,
    max_attempts: int = 0,
    deadline: float = 0.0,
    threshold: int = 0,
    cooldown: float = 10.0,
    overflow: str = "",
) -> Snapshot:
    snap = make_snapshot(
        base_urls={p: URLS[p] for p in providers},
        targets=[(p, f"model-{p}", i) for i, p in enumerate(providers)],
    )
    policy = snap.organizations[0].policy
    policy.retry.retry_on.extend(retry_on or [])
    policy.retry.max_attempts = max_attempts
    policy.retry.deadline_seconds = deadline
    policy.breaker.failure_threshold = threshold
    policy.breaker.cooldown_seconds = cooldown
    policy.overflow = overflow
    return snap


def host(request: httpx.Request) -> str:
    return request.url.host.split(".")[0]


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=openai_completion(f"model-{host(request)}"))


def failing(bad: dict[str, Callable[[httpx.Request], httpx.Response]]) -> Callable[[httpx.Request], Any]:
    def handle(request: httpx.Request) -> httpx.Response:
        return bad[host(request)](request) if host(request) in bad else ok(request)

    return handle


def status(code: int, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda r: httpx.Response(code, json={"error": {"message": f"upstream {code}"}}, headers=headers)


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def stall(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(20)
    return ok(request)


async def post(gw: Gw, **extra: Any) -> httpx.Response:
    return await gw.client.post("/v1/chat/completions", content=chat_body(**extra), headers=AUTH)


# --- each failure class ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "outcome", "code", "reason"),
    [
        (refuse, "unreachable", None, "connect_error"),
        (status(500), "error", 500, "5xx"),
        (status(503), "error", 503, "5xx"),
        (status(429, **{"retry-after": "3"}), "rate_limited", 429, "429"),
    ],
)
async def test_each_default_failure_class_fails_over(
    gateway: Callable[..., Gw], failure: Any, outcome: str, code: int | None, reason: str
) -> None:
    gw = gateway(failing({"a": failure}), snapshot())
    response = await post(gw)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "model-b"
    assert "retry-after" not in response.headers  # the client never sees a's error
    assert gw.chain() == [("a", outcome, code), ("b", "ok", 200)]
    assert (gw.events[0].provider, gw.events[0].status) == ("b", 200)
    assert gw.failovers("a", reason) == 1


async def test_a_timeout_fails_over(gateway: Callable[..., Gw]) -> None:
    snap = snapshot()
    snap.providers[0].timeout_seconds = 0.2  # a: stalls past its read timeout
    gw = gateway(failing({"a": stall}), snap)  # type: ignore[dict-item]
    response = await post(gw)
    assert response.status_code == 200
    assert gw.chain() == [("a", "timeout", None), ("b", "ok", 200)]


async def test_a_request_error_is_returned_at_once(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(400)}), snapshot())
    response = await post(gw)
    assert response.status_code == 400
    assert gw.hosts == ["a"]
    assert gw.chain() == [("a", "error", 400)]


async def test_failing_over_on_every_target_returns_the_last_failure(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(502), "b": refuse}), snapshot())
    response = await post(gw)
    assert response.status_code == 502
    assert "provider 'b'" in response.json()["error"]["message"]
    assert gw.chain() == [("a", "error", 502), ("b", "unreachable", None)]


# --- the retry policy ------------------------------------------------------------------


async def test_classes_not_named_are_not_failed_over(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(429)}), snapshot(retry_on=["5xx"]))
    response = await post(gw)
    assert response.status_code == 429
    assert gw.hosts == ["a"]
    gw = gateway(failing({"a": refuse}), snapshot(retry_on=["5xx"]))
    assert (await post(gw)).status_code == 502
    assert gw.hosts == ["a"]


async def test_an_exact_status_can_be_named(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(404)}), snapshot())
    assert (await post(gw)).status_code == 404  # not in the default classes
    gw = gateway(failing({"a": status(404)}), snapshot(retry_on=["404", "5xx"]))
    assert (await post(gw)).status_code == 200
    assert gw.chain() == [("a", "error", 404), ("b", "ok", 200)]
    assert gw.failovers("a", "status_404") == 1


async def test_the_retry_budget_caps_the_attempts(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(500), "b": status(500)}), snapshot("abc", max_attempts=2))
    response = await post(gw)
    assert response.status_code == 500
    assert gw.hosts == ["a", "b"]  # c would have answered, but the budget is spent


async def test_a_budget_above_the_targets_goes_round_again(gateway: Callable[..., Gw]) -> None:
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return status(503)(request) if calls["n"] < 3 else ok(request)

    gw = gateway(flaky, snapshot("a", max_attempts=3))
    assert (await post(gw)).status_code == 200
    assert [o for _, o, _ in gw.chain()] == ["error", "error", "ok"]


async def test_the_deadline_ends_the_call(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": stall}), snapshot(deadline=0.3))  # type: ignore[dict-item]
    response = await post(gw)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert gw.hosts == ["a"]  # the deadline capped a's read timeout; none left for b
    assert gw.chain() == [("a", "timeout", None)]


async def test_within_the_deadline_failover_goes_on(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(500)}), snapshot(deadline=10))
    assert (await post(gw)).status_code == 200
    assert gw.hosts == ["a", "b"]


# --- streams ---------------------------------------------------------------------------

STREAM = [
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
    b"data: [DONE]\n\n",
]


def streaming(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers=SSE, content=b"".join(STREAM))


@pytest.mark.parametrize(
    ("broken", "outcome"),
    [
        (FailingStream([], httpx.ReadTimeout("stalled")), "timeout"),
        (FailingStream([], httpx.RemoteProtocolError("peer closed")), "unreachable"),
        (FailingStream([b""], httpx.ReadError("reset")), "unreachable"),
    ],
)
async def test_a_stream_that_fails_before_its_first_byte_fails_over(
    gateway: Callable[..., Gw], broken: FailingStream, outcome: str
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if host(request) == "a":
            return httpx.Response(200, headers=SSE, stream=broken)
        return streaming(request)

    gw = gateway(handle, snapshot())
    response = await post(gw, stream=True)
    assert response.status_code == 200
    assert "Hi" in response.text and "[DONE]" in response.text
    assert gw.chain() == [("a", outcome, None), ("b", "ok", 200)]


async def test_an_empty_stream_fails_over(gateway: Callable[..., Gw]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE, content=b"") if host(request) == "a" else streaming(request)

    gw = gateway(handle, snapshot())
    response = await post(gw, stream=True)
    assert response.status_code == 200 and "Hi" in response.text
    assert [(p, o) for p, o, _ in gw.chain()] == [("a", "unreachable"), ("b", "ok")]


async def test_a_stream_that_fails_after_its_first_byte_does_not_fail_over(
    gateway: Callable[..., Gw],
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE, stream=FailingStream([STREAM[0]], httpx.ReadError("reset")))

    gw = gateway(handle, snapshot())
    response = await post(gw, stream=True)
    assert response.status_code == 200
    assert "Hi" in response.text  # what the client got before the break
    assert gw.hosts == ["a"]
    assert gw.chain() == [("a", "unreachable", 200)]
    assert gw.events[0].error_type == "upstream_stream_interrupted"


async def test_an_anthropic_stream_fails_over_before_its_first_byte(gateway: Callable[..., Gw]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if host(request) == "a":
            return httpx.Response(200, headers=SSE, stream=FailingStream([], httpx.ReadTimeout("stalled")))
        return streaming(request)

    gw = gateway(handle, snapshot())
    response = await gw.client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=ANTHROPIC)
    assert response.status_code == 200
    assert "message_start" in response.text and "Hi" in response.text
    assert [(p, o) for p, o, _ in gw.chain()] == [("a", "timeout"), ("b", "ok")]


class SlowStream(httpx.AsyncByteStream):
    """Chunks with a pause before each (the first one: `first_delay`)."""

    def __init__(self, chunks: list[bytes], first_delay: float, gap: float) -> None:
        self._chunks = chunks
        self._delays = [first_delay] + [gap] * (len(chunks) - 1)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for delay, chunk in zip(self._delays, self._chunks, strict=True):
            await asyncio.sleep(delay)
            yield chunk


async def test_the_deadline_does_not_cut_a_stream_already_relayed(gateway: Callable[..., Gw]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE, stream=SlowStream(STREAM, first_delay=0.0, gap=0.6))

    gw = gateway(handle, snapshot(deadline=0.3))
    response = await post(gw, stream=True)
    assert response.status_code == 200
    assert "Hi" in response.text and "[DONE]" in response.text
    assert gw.chain() == [("a", "ok", 200)]


async def test_the_deadline_bounds_the_wait_for_a_stream_first_chunk(gateway: Callable[..., Gw]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE, stream=SlowStream(STREAM, first_delay=20, gap=0))

    gw = gateway(handle, snapshot(deadline=0.3))
    response = await post(gw, stream=True)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert gw.hosts == ["a"]


# --- breakers and overflow ---------------------------------------------------------------


async def test_an_open_breaker_skips_the_target_until_a_probe_closes_it(gateway: Callable[..., Gw]) -> None:
    clock = Clock()
    a_down = {"down": True}

    def handle(request: httpx.Request) -> httpx.Response:
        if host(request) == "a" and a_down["down"]:
            return status(500)(request)
        return ok(request)

    gw = gateway(handle, snapshot(threshold=2, cooldown=10), clock)
    for _ in range(2):
        assert (await post(gw)).status_code == 200
    assert gw.hosts == ["a", "b", "a", "b"]
    gw.hosts.clear()
    response = await post(gw)
    assert response.status_code == 200
    assert gw.hosts == ["b"]  # a is not called while its breaker is open
    assert [(p, o) for p, o, _ in gw.chain()] == [("a", "breaker_open"), ("b", "ok")]
    assert gw.failovers("a", "breaker_open") == 1

    clock.now += 11  # cooldown over: the next call probes a, which has recovered
    a_down["down"] = False
    gw.hosts.clear()
    assert (await post(gw)).status_code == 200
    assert gw.hosts == ["a"]
    assert gw.breakers.store.view() == {}
    assert (await post(gw)).json()["model"] == "model-a"


async def test_a_failed_probe_keeps_the_target_out(gateway: Callable[..., Gw]) -> None:
    clock = Clock()
    gw = gateway(failing({"a": status(503)}), snapshot(threshold=1, cooldown=10), clock)
    await post(gw)  # opens a's breaker
    clock.now += 11
    gw.hosts.clear()
    assert (await post(gw)).status_code == 200
    assert gw.hosts == ["a", "b"]  # the probe, then b
    gw.hosts.clear()
    await post(gw)
    assert gw.hosts == ["b"]  # re-opened for another cooldown


async def test_429s_open_the_breaker_too(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(429)}), snapshot(threshold=2), Clock())
    await post(gw)
    await post(gw)
    gw.hosts.clear()
    await post(gw)
    assert gw.hosts == ["b"]


async def test_all_breakers_open_is_503(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(500), "b": status(500)}), snapshot(threshold=1), Clock())
    assert (await post(gw)).status_code == 500
    response = await post(gw)
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "breaker_open"
    assert "a/model-a (breaker open)" in body["message"]
    assert [(p, o) for p, o, _ in gw.chain()] == [("a", "breaker_open"), ("b", "breaker_open")]


async def test_overflow_fail_refuses_when_the_breaker_is_open(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(500)}), snapshot(threshold=1, overflow="fail"), Clock())
    # A 5xx still fails over (overflow is about breakers, quotas and 429s); it opens a's breaker.
    assert (await post(gw)).status_code == 200
    gw.hosts.clear()
    response = await post(gw)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "breaker_open"
    anthropic = await gw.client.post("/v1/messages", json=MESSAGES, headers=ANTHROPIC)
    assert anthropic.status_code == 503
    assert anthropic.json()["error"]["type"] == "overloaded_error"
    assert gw.hosts == []


async def test_overflow_fail_returns_an_upstream_429_at_once(gateway: Callable[..., Gw]) -> None:
    gw = gateway(failing({"a": status(429, **{"retry-after": "4"})}), snapshot(overflow="fail"))
    response = await post(gw)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "4"
    assert gw.hosts == ["a"]


class QuotaGovernor:
    """Stands in for the admission governor: target `a` is over its own quota."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def target_admit(self, target: Target, record: CallRecord) -> bool:
        self.asked.append(target.runtime.slug)
        return target.runtime.slug != "a"


def with_quota(gw: Gw) -> QuotaGovernor:
    governor = QuotaGovernor()
    for handler in gw.app.routes.values():
        handler._attempts.governor = governor  # noqa: SLF001
    return governor


@pytest.mark.parametrize(("overflow", "expected"), [("next_target", 200), ("fail", 429)])
async def test_a_target_over_its_quota_spills_or_fails(
    gateway: Callable[..., Gw], overflow: str, expected: int
) -> None:
    snap = snapshot(overflow=overflow)
    snap.models[0].targets[0].limits.rpm = 1  # only targets with a quota are asked
    gw = gateway(ok, snap)
    governor = with_quota(gw)
    response = await post(gw)
    assert response.status_code == expected
    assert governor.asked == ["a"]
    if expected == 200:
        assert gw.hosts == ["b"]
        assert [(p, o) for p, o, _ in gw.chain()] == [("a", "over_quota"), ("b", "ok")]
    else:
        assert response.json()["error"]["code"] == "target_quota_exceeded"
        assert "retry-after" in response.headers
        assert gw.hosts == []


async def test_embeddings_fail_over_too(gateway: Callable[..., Gw]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if host(request) == "a":
            return status(502)(request)
        return httpx.Response(200, json={"object": "list", "data": [], "usage": {"prompt_tokens": 2}})

    gw = gateway(handle, snapshot())
    response = await gw.client.post(
        "/v1/embeddings", content=orjson.dumps({"model": "chat", "input": "hi"}), headers=AUTH
    )
    assert response.status_code == 200
    assert [(p, o) for p, o, _ in gw.chain()] == [("a", "error"), ("b", "ok")]


# --- the policy as configured --------------------------------------------------------


def test_retry_policy_from_yaml_with_a_bare_on_key() -> None:
    doc = yaml.safe_load(
        "organizations:\n"
        "  - name: acme\n"
        "    policy:\n"
        "      retry: {on: [timeout, 429, '404'], max_attempts: 3, deadline_seconds: 2.5}\n"
    )
    retry = parse_config(doc).organizations[0].policy.retry
    assert (retry.on, retry.max_attempts, retry.deadline_seconds) == (["timeout", "429", "404"], 3, 2.5)


def test_retry_policy_from_the_snapshot() -> None:
    message = RetryPolicyMessage(retry_on=["timeout", "429", "404"], max_attempts=3, deadline_seconds=2.5)
    policy = retry_policy(message)
    assert policy.classes == frozenset({"timeout", "429"})
    assert policy.statuses == frozenset({429, 404})
    assert (policy.max_attempts, policy.deadline_seconds) == (3, 2.5)
    assert policy.retries("", 404) and policy.retries("timeout") and not policy.retries("5xx", 500)
    default = retry_policy(RetryPolicyMessage())
    assert default.classes == frozenset({"connect_error", "timeout", "429", "5xx"})
    assert not default.retries("", 404)
