"""Calls whose caller and upstream speak different protocols: requests translated up,
answers, streams and errors translated down, failover across protocols, usage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from .conftest import AUTH, KEY, Gateway, chat_body, make_snapshot, openai_completion
from .wire import (
    anthropic_message,
    anthropic_stream,
    gemini_response,
    gemini_stream,
    openai_stream,
    sse_events,
)

CALLER = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
SSE = {"content-type": "text/event-stream"}


def messages_body(model: str = "chat", **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "max_tokens": 100,
            "system": "be brief",
            "messages": [{"role": "user", "content": "hello there"}],
            **extra,
        }
    )


def _snapshot(fmt: str, **kwargs: Any) -> Any:
    return make_snapshot(formats={"up": fmt}, **kwargs)


def _anthropic_text(events: list[tuple[str | None, Any]]) -> str:
    return "".join(d["delta"].get("text", "") for name, d in events if name == "content_block_delta")


def _openai_text(events: list[tuple[str | None, Any]]) -> str:
    return "".join(
        (c["choices"][0]["delta"].get("content") or "")
        for _, c in events
        if isinstance(c, dict) and c.get("choices")
    )


# --- OpenAI callers ------------------------------------------------------------------


async def test_openai_caller_anthropic_upstream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=anthropic_message()), _snapshot("anthropic"))
    body = {
        "model": "chat",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
    }
    response = await gw.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "chat"
    assert answer["choices"][0]["message"]["content"] == "Hi from Claude"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["prompt_tokens"] == 18
    [upstream] = gw.upstream_requests
    sent = orjson.loads(upstream.content)
    assert sent["model"] == "gpt-up" and sent["system"] in (
        "be brief",
        [{"type": "text", "text": "be brief"}],
    )
    assert isinstance(sent["max_tokens"], int)
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens, event.cached_tokens, event.tokens_estimated) == (
        18,
        6,
        4,
        False,
    )


@pytest.mark.parametrize("include_usage", [False, True])
async def test_openai_caller_anthropic_upstream_stream(
    make_gateway: Callable[..., Gateway], include_usage: bool
) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, content=b"".join(anthropic_stream()), headers=SSE),
        _snapshot("anthropic"),
    )
    extra: dict[str, Any] = {"stream": True}
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    response = await gw.client.post("/v1/chat/completions", content=chat_body(**extra), headers=AUTH)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1][1] == "[DONE]"
    assert _openai_text(events) == "Hello there"
    usage_chunks = [c for _, c in events if isinstance(c, dict) and c.get("usage")]
    assert bool(usage_chunks) is include_usage
    assert orjson.loads(gw.upstream_requests[0].content)["stream"] is True
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens, event.stream) == (30, 15, True)


async def test_openai_caller_gemini_upstream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=gemini_response()), _snapshot("gemini"))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.json()["choices"][0]["message"]["content"] == "Hi from Gemini"
    [event] = gw.events
    # Gemini counts thoughts apart from candidates: both are output.
    assert (event.input_tokens, event.output_tokens, event.cached_tokens, event.reasoning_tokens) == (
        9,
        5,
        2,
        2,
    )


async def test_openai_caller_gemini_upstream_stream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, content=b"".join(gemini_stream()), headers=SSE), _snapshot("gemini")
    )
    response = await gw.client.post("/v1/chat/completions", content=chat_body(stream=True), headers=AUTH)
    events = sse_events(response.text)
    assert _openai_text(events) == "Hello there" and events[-1][1] == "[DONE]"
    assert (gw.events[0].input_tokens, gw.events[0].output_tokens) == (8, 4)


# --- Anthropic callers ---------------------------------------------------------------


async def test_anthropic_caller_openai_upstream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=openai_completion()))
    response = await gw.client.post("/v1/messages", content=messages_body(), headers=CALLER)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "message" and answer["role"] == "assistant"
    assert answer["content"] == [{"type": "text", "text": "hi"}]
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"]["input_tokens"] == 7 and answer["usage"]["output_tokens"] == 3
    sent = orjson.loads(gw.upstream_requests[0].content)
    assert sent["model"] == "gpt-up"
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    # The caller's Anthropic headers are not OpenAI's business.
    assert "anthropic-version" not in gw.upstream_requests[0].headers
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens, event.tokens_estimated) == (7, 3, False)


async def test_anthropic_caller_openai_upstream_stream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, content=b"".join(openai_stream()), headers=SSE))
    response = await gw.client.post("/v1/messages", content=messages_body(stream=True), headers=CALLER)
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "content_block_start" in names and "message_delta" in names
    assert _anthropic_text(events) == "Hello"
    delta = next(d for name, d in events if name == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    # The gateway asked the OpenAI upstream for usage, though the caller cannot say so.
    assert orjson.loads(gw.upstream_requests[0].content)["stream_options"] == {"include_usage": True}
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens) == (11, 2)


async def test_anthropic_caller_gemini_upstream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=gemini_response()), _snapshot("gemini"))
    response = await gw.client.post("/v1/messages", content=messages_body(), headers=CALLER)
    assert response.json()["content"] == [{"type": "text", "text": "Hi from Gemini"}]
    sent = orjson.loads(gw.upstream_requests[0].content)
    assert sent["systemInstruction"]["parts"] == [{"text": "be brief"}]
    assert gw.events[0].output_tokens == 5


async def test_anthropic_caller_gemini_upstream_stream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, content=b"".join(gemini_stream()), headers=SSE), _snapshot("gemini")
    )
    response = await gw.client.post("/v1/messages", content=messages_body(stream=True), headers=CALLER)
    events = sse_events(response.text)
    assert _anthropic_text(events) == "Hello there"
    assert events[-1][0] == "message_stop"
    assert (gw.events[0].input_tokens, gw.events[0].output_tokens) == (8, 4)


async def test_anthropic_caller_of_the_mock_streams(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(500))
    response = await gw.client.post(
        "/v1/messages", content=messages_body("echo", stream=True), headers=CALLER
    )
    assert _anthropic_text(sse_events(response.text)) == "hello there"
    assert gw.upstream_requests == []
    assert (gw.events[0].provider, gw.events[0].output_tokens) == ("builtin", 2)


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "upstream_body", "caller_status", "error_type"),
    [
        (
            400,
            {"error": {"message": "bad temperature", "type": "invalid_request_error"}},
            400,
            "invalid_request_error",
        ),
        (
            401,
            {"error": {"message": "bad key", "type": "invalid_request_error"}},
            401,
            "authentication_error",
        ),
        (429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, 429, "rate_limit_error"),
        (500, {"error": {"message": "oops", "type": "server_error"}}, 500, "api_error"),
    ],
)
async def test_openai_upstream_errors_reach_anthropic_callers_as_anthropic_errors(
    make_gateway: Callable[..., Gateway],
    status: int,
    upstream_body: dict[str, Any],
    caller_status: int,
    error_type: str,
) -> None:
    gw = make_gateway(lambda r: httpx.Response(status, json=upstream_body))
    response = await gw.client.post("/v1/messages", content=messages_body(), headers=CALLER)
    assert response.status_code == caller_status
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert body["error"]["message"] == upstream_body["error"]["message"]


async def test_anthropic_overload_reaches_openai_callers_as_an_openai_error(
    make_gateway: Callable[..., Gateway],
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    gw = make_gateway(lambda r: httpx.Response(529, json=overloaded), _snapshot("anthropic"))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Overloaded"


async def test_malformed_translated_requests_are_400_in_the_callers_protocol(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=openai_completion()))
    bad_role = orjson.dumps(
        {"model": "chat", "max_tokens": 5, "messages": [{"role": "wizard", "content": "x"}]}
    )
    response = await gw.client.post("/v1/messages", content=bad_role, headers=CALLER)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert gw.upstream_requests == []


# --- failover and usage --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_failover_from_gemini_to_openai(make_gateway: Callable[..., Gateway], path: str) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if "generativelanguage" in str(request.url):
            return httpx.Response(
                503, json={"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
            )
        return httpx.Response(200, json=openai_completion())

    snapshot = make_snapshot(
        base_urls={"gem": "https://generativelanguage.test", "oai": "http://openai.test/v1"},
        formats={"gem": "gemini"},
        targets=[("gem", "gemini-2.5-flash", 0), ("oai", "gpt-up", 1)],
    )
    gw = make_gateway(upstream, snapshot)
    body = chat_body() if path.endswith("completions") else messages_body()
    headers = AUTH if path.endswith("completions") else CALLER
    response = await gw.client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    first, second = gw.upstream_requests
    assert "contents" in orjson.loads(first.content)
    assert "messages" in orjson.loads(second.content)
    [event] = gw.events
    assert event.provider == "oai"
    assert [(a.provider, a.outcome) for a in event.attempts] == [("gem", "error"), ("oai", "ok")]
    assert (event.input_tokens, event.output_tokens) == (7, 3)


async def test_stream_without_usage_is_counted_locally(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, content=b"".join(openai_stream(usage=False)), headers=SSE)
    )
    response = await gw.client.post("/v1/chat/completions", content=chat_body(stream=True), headers=AUTH)
    assert _openai_text(sse_events(response.text)) == "Hello"
    [event] = gw.events
    assert event.tokens_estimated is True
    assert event.input_tokens > 0 and event.output_tokens > 0


async def test_translated_stream_without_usage_is_counted_locally(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, content=b"".join(openai_stream(usage=False)), headers=SSE)
    )
    response = await gw.client.post("/v1/messages", content=messages_body(stream=True), headers=CALLER)
    assert _anthropic_text(sse_events(response.text)) == "Hello"
    [event] = gw.events
    assert event.tokens_estimated is True and event.output_tokens > 0 and event.input_tokens > 0


async def test_translated_answer_without_usage_is_counted_locally(
    make_gateway: Callable[..., Gateway],
) -> None:
    answer = openai_completion()
    del answer["usage"]
    gw = make_gateway(lambda r: httpx.Response(200, json=answer))
    response = await gw.client.post("/v1/messages", content=messages_body(), headers=CALLER)
    assert response.status_code == 200
    [event] = gw.events
    assert event.tokens_estimated is True and event.input_tokens > 0 and event.output_tokens > 0


# --- first byte ----------------------------------------------------------------------


class _Gated(httpx.AsyncByteStream):
    """Yields the next chunk only once the gateway has sent something to its caller
    after the previous content chunk."""

    def __init__(self, chunks: list[bytes], relayed: asyncio.Event, gated: set[int]) -> None:
        self._chunks = chunks
        self._relayed = relayed
        self._gated = gated

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(self._chunks):
            self._relayed.clear()
            yield chunk
            if i in self._gated:
                await asyncio.wait_for(self._relayed.wait(), 5)


async def test_translated_stream_relays_each_event_as_it_comes(make_gateway: Callable[..., Gateway]) -> None:
    relayed = asyncio.Event()
    chunks = openai_stream(("a", "b", "c"))
    gw = make_gateway(
        lambda r: httpx.Response(200, stream=_Gated(chunks, relayed, {0, 1, 2, 3}), headers=SSE)
    )
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    parts = [messages_body(stream=True)]

    async def receive() -> dict[str, Any]:
        if parts:
            return {"type": "http.request", "body": parts.pop(), "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            relayed.set()
            if not message.get("more_body"):
                done.set()

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "headers": [(b"x-api-key", KEY.encode())],
        "client": ("198.51.100.7", 1234),
    }
    await gw.app(scope, receive, send)  # type: ignore[arg-type]
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    # One caller write per content chunk at least: nothing waited for the end.
    assert len(bodies) >= 5
    assert _anthropic_text(sse_events(b"".join(bodies).decode())) == "abc"
