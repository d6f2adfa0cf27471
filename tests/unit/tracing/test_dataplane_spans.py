"""Data-plane spans: one SERVER span per call continuing the caller's traceparent, one
CLIENT span per upstream attempt named in the traceparent sent upstream, and the usage
event carrying the trace id; with tracing off, none of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from switchyard_common.tracing import TRACING

from tests.unit.dataplane.conftest import AUTH, Gateway, chat_body, make_snapshot, openai_completion

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=openai_completion())


def _by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_call_makes_server_and_attempt_spans(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post(
        "/v1/chat/completions",
        content=chat_body(),
        headers={**AUTH, "traceparent": TRACEPARENT, "tracestate": "vendor=abc"},
    )
    assert response.status_code == 200

    finished = spans.get_finished_spans()
    [server] = _by_kind(finished, SpanKind.SERVER)
    [attempt] = _by_kind(finished, SpanKind.CLIENT)

    # The caller's trace goes on: same trace id, the caller's span is the parent.
    assert server.name == "POST /v1/chat/completions"
    assert server.context is not None and server.parent is not None
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert format(server.parent.span_id, "016x") == PARENT_ID
    expected_server = {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "chat",
        "gen_ai.response.model": "gpt-up",
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 3,
        "switchyard.org": "acme",
        "switchyard.key_id": "key-1",
        "switchyard.provider": "up",
        "client.address": "203.0.113.9",
    }
    assert _attrs(server).items() >= expected_server.items()
    assert server.status.status_code == StatusCode.UNSET

    # The attempt is the server span's child.
    assert attempt.context is not None and attempt.parent is not None
    assert attempt.parent.span_id == server.context.span_id
    assert attempt.context.trace_id == server.context.trace_id
    assert attempt.name == "chat gpt-up"
    expected_attempt = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-up",
        "switchyard.provider": "up",
        "switchyard.attempt.outcome": "ok",
        "http.response.status_code": 200,
        "server.address": "upstream.test",
    }
    assert _attrs(attempt).items() >= expected_attempt.items()

    # The upstream sees the attempt span as its parent.
    [sent] = gw.upstream_requests
    span_id = format(attempt.context.span_id, "016x")
    assert sent.headers["traceparent"] == f"00-{TRACE_ID}-{span_id}-01"
    assert sent.headers["tracestate"] == "vendor=abc"

    [event] = gw.events
    assert event.trace_id == TRACE_ID


async def test_each_failover_attempt_has_its_span_and_traceparent(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    snapshot = make_snapshot(
        base_urls={"a": "http://a.test/v1", "b": "http://b.test/v1"},
        targets=[("a", "model-a", 0), ("b", "model-b", 1)],
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, json=openai_completion(model="model-b"))

    gw = make_gateway(handler, snapshot)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 200

    finished = spans.get_finished_spans()
    [server] = _by_kind(finished, SpanKind.SERVER)
    first, second = sorted(_by_kind(finished, SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert server.parent is None  # no traceparent came in: a new trace
    assert _attrs(first)["switchyard.provider"] == "a"
    assert _attrs(first)["switchyard.attempt.outcome"] == "error"
    assert _attrs(first)["error.type"] == "503"
    assert first.status.status_code == StatusCode.ERROR
    assert _attrs(second)["switchyard.attempt.outcome"] == "ok"
    assert _attrs(server)["gen_ai.response.model"] == "model-b"
    assert _attrs(server)["switchyard.attempts"] == 2

    sent = {r.url.host: r.headers["traceparent"] for r in gw.upstream_requests}
    for span, host in ((first, "a.test"), (second, "b.test")):
        assert span.context is not None
        assert sent[host].split("-")[2] == format(span.context.span_id, "016x")
    assert gw.events[0].trace_id == format(server.context.trace_id, "032x")  # type: ignore[union-attr]


async def test_failed_call_sets_error_status(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(lambda r: httpx.Response(500, json={"error": {"message": "boom"}}))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code >= 500

    [server] = _by_kind(spans.get_finished_spans(), SpanKind.SERVER)
    assert server.status.status_code == StatusCode.ERROR
    assert _attrs(server)["http.response.status_code"] == response.status_code
    assert "gen_ai.response.model" not in _attrs(server)


async def test_refused_call_has_a_span_without_attempts(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post(
        "/v1/chat/completions", content=chat_body(), headers={"Authorization": "Bearer gk_wrong"}
    )
    assert response.status_code == 401

    [server] = spans.get_finished_spans()
    assert server.kind == SpanKind.SERVER
    assert _attrs(server)["http.response.status_code"] == 401
    assert _attrs(server)["error.type"] == "authentication_error"
    # A caller's mistake is not a server error.
    assert server.status.status_code == StatusCode.UNSET


async def test_streamed_call_attempt_covers_the_stream(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    chunks = [
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up",
         "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]},
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up", "choices": [],
         "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
    ]  # fmt: skip
    stream = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    gw = make_gateway(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
    )
    body = chat_body(stream=True, stream_options={"include_usage": True})
    response = await gw.client.post("/v1/chat/completions", content=body, headers=AUTH)
    assert response.status_code == 200

    finished = spans.get_finished_spans()
    [server] = _by_kind(finished, SpanKind.SERVER)
    [attempt] = _by_kind(finished, SpanKind.CLIENT)
    assert _attrs(server)["switchyard.stream"] is True
    assert _attrs(server)["gen_ai.usage.input_tokens"] == 5
    assert _attrs(server)["gen_ai.usage.output_tokens"] == 2
    assert _attrs(attempt)["switchyard.attempt.outcome"] == "ok"
    assert attempt.end_time is not None and server.end_time is not None
    assert attempt.end_time <= server.end_time


async def test_mock_provider_attempt_sends_nothing(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post("/v1/chat/completions", content=chat_body("echo"), headers=AUTH)
    assert response.status_code == 200

    [attempt] = _by_kind(spans.get_finished_spans(), SpanKind.CLIENT)
    assert _attrs(attempt)["gen_ai.provider.name"] == "switchyard.mock"
    assert "server.address" not in _attrs(attempt)
    assert gw.upstream_requests == []


async def test_tracing_off_sends_no_traceparent_and_keeps_only_the_callers_trace_id(
    tracing_off: None, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post(
        "/v1/chat/completions", content=chat_body(), headers={**AUTH, "traceparent": TRACEPARENT}
    )
    assert response.status_code == 200

    [sent] = gw.upstream_requests
    assert "traceparent" not in sent.headers
    assert "tracestate" not in sent.headers
    [event] = gw.events
    # No span and nothing propagated; the event still names the caller's own trace.
    assert event.trace_id == TRACE_ID


async def test_switch_off_creates_no_span_even_with_a_provider(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(_ok)
    TRACING.enabled = False  # the one flag the hot path reads
    response = await gw.client.post(
        "/v1/chat/completions", content=chat_body(), headers={**AUTH, "traceparent": TRACEPARENT}
    )
    assert response.status_code == 200

    assert spans.get_finished_spans() == ()
    assert "traceparent" not in gw.upstream_requests[0].headers
    assert gw.events[0].trace_id == TRACE_ID


async def test_usage_event_carries_the_call_trace_in_its_headers(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post(
        "/v1/chat/completions",
        content=chat_body(),
        headers={**AUTH, "traceparent": TRACEPARENT, "tracestate": "vendor=abc"},
    )
    assert response.status_code == 200

    finished = spans.get_finished_spans()
    [server] = _by_kind(finished, SpanKind.SERVER)
    [producer] = _by_kind(finished, SpanKind.PRODUCER)
    [message] = gw.publisher.messages
    # A PRODUCER span, child of the call's server span, names the event...
    assert producer.parent is not None and server.context is not None and producer.context is not None
    assert producer.parent.span_id == server.context.span_id
    assert producer.name == f"create {message.subject}"
    assert (
        _attrs(producer).items()
        >= {
            "messaging.system": "nats",
            "messaging.operation.type": "create",
            "messaging.destination.name": message.subject,
            "messaging.message.id": message.msg_id,
        }.items()
    )
    # ... and the message's W3C headers carry it (tracestate kept, baggage never).
    span_id = format(producer.context.span_id, "016x")
    assert dict(message.headers) == {"traceparent": f"00-{TRACE_ID}-{span_id}-01", "tracestate": "vendor=abc"}


async def test_no_message_headers_when_tracing_is_off(
    tracing_off: None, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post(
        "/v1/chat/completions", content=chat_body(), headers={**AUTH, "traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    [message] = gw.publisher.messages
    assert message.headers == ()
