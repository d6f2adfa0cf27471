"""How streams end and open, as callers and the usage record see them: an upstream
error inside a stream, the prompt figure in a translated message_start, and an
upstream's retry hints on a refused call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from switchyard_dataplane.providers.gemini import GeminiStreamRelay
from switchyard_dataplane.token_count import approximate_payload_tokens

from .conftest import AUTH, KEY, Gateway, chat_body, make_snapshot, openai_completion
from .wire import anthropic_stream, gemini_stream, openai_stream, sse, sse_events

ANTHROPIC_CALLER = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
SSE = {"content-type": "text/event-stream"}
MESSAGES = {
    "model": "chat",
    "max_tokens": 100,
    "system": "be brief",
    "messages": [{"role": "user", "content": "hello there, how are you doing today?"}],
    "stream": True,
}

ANTHROPIC_ERROR = sse(
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"
)
OPENAI_ERROR = sse({"error": {"message": "The server had an error", "type": "server_error", "code": None}})


def _streaming(chunks: list[bytes]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, content=b"".join(chunks), headers=SSE)


def _assert_stream_error(gw: Gateway) -> None:
    [event] = gw.events
    assert (event.status, event.error_type, event.stream) == (200, "upstream_stream_error", True)
    assert [a.outcome for a in event.attempts] == ["error"]


# --- an upstream error inside a stream ------------------------------------------------


async def test_translated_stream_error_is_recorded(make_gateway: Callable[..., Gateway]) -> None:
    # Anthropic upstream fails after a first delta; the OpenAI caller's stream ends with
    # an error chunk under the 200 already sent.
    chunks = anthropic_stream(("Hel",))[:4] + [ANTHROPIC_ERROR]
    gw = make_gateway(_streaming(chunks), make_snapshot(formats={"up": "anthropic"}))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(stream=True), headers=AUTH)
    assert response.status_code == 200
    assert any(isinstance(d, dict) and "error" in d for _, d in sse_events(response.text))
    _assert_stream_error(gw)


async def test_translated_stream_error_to_anthropic_caller_is_recorded(
    make_gateway: Callable[..., Gateway],
) -> None:
    chunks = openai_stream(("Hel",), usage=False)[:2] + [OPENAI_ERROR]
    gw = make_gateway(_streaming(chunks))
    response = await gw.client.post("/v1/messages", json=MESSAGES, headers=ANTHROPIC_CALLER)
    assert [name for name, _ in sse_events(response.text)][-1] == "error"
    _assert_stream_error(gw)


async def test_passthrough_anthropic_stream_error_is_recorded(make_gateway: Callable[..., Gateway]) -> None:
    chunks = anthropic_stream(("Hel",))[:4] + [ANTHROPIC_ERROR]
    gw = make_gateway(_streaming(chunks), make_snapshot(formats={"up": "anthropic"}))
    response = await gw.client.post("/v1/messages", json=MESSAGES, headers=ANTHROPIC_CALLER)
    assert response.content == b"".join(chunks)  # relayed as received
    _assert_stream_error(gw)


@pytest.mark.parametrize("include_usage", [False, True])
async def test_passthrough_openai_stream_error_is_recorded(
    make_gateway: Callable[..., Gateway], include_usage: bool
) -> None:
    chunks = openai_stream(("Hel",), usage=False)[:2] + [OPENAI_ERROR]
    gw = make_gateway(_streaming(chunks))
    extra: dict[str, Any] = {"stream": True}
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    response = await gw.client.post("/v1/chat/completions", content=chat_body(**extra), headers=AUTH)
    assert response.content == b"".join(chunks)
    _assert_stream_error(gw)


async def test_complete_streams_are_not_errors(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_streaming(openai_stream()))
    await gw.client.post("/v1/chat/completions", content=chat_body(stream=True), headers=AUTH)
    # A model that talks about "error" in its text is no error either.
    gw2 = make_gateway(_streaming(openai_stream(('say "error":', " ok"))))
    await gw2.client.post("/v1/chat/completions", content=chat_body(stream=True), headers=AUTH)
    for event in (*gw.events, *gw2.events):
        assert (event.error_type, [a.outcome for a in event.attempts]) == (None, ["ok"])


def test_gemini_relay_notes_a_stream_error() -> None:
    relay = GeminiStreamRelay()
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    data = gemini_stream(("Hi",))[0] + sse(error, crlf=True)
    assert relay.feed(data[:30]) + relay.feed(data[30:]) + relay.finish() == data
    assert relay.error == "The model is overloaded."


# --- message_start of translated streams to Anthropic callers ---------------------------


def _estimate() -> int:
    # The fast character-based figure: message_start must not wait for the tokenizer.
    return approximate_payload_tokens(MESSAGES)


@pytest.mark.parametrize(
    ("fmt", "chunks", "real_input", "real_output"),
    [
        ("openai", openai_stream(), 11, 2),
        ("gemini", gemini_stream(), 8, 4),
    ],
)
async def test_message_start_carries_the_prompt_estimate(
    make_gateway: Callable[..., Gateway], fmt: str, chunks: list[bytes], real_input: int, real_output: int
) -> None:
    gw = make_gateway(_streaming(chunks), make_snapshot(formats={"up": fmt}))
    response = await gw.client.post("/v1/messages", json=MESSAGES, headers=ANTHROPIC_CALLER)
    events = sse_events(response.text)
    [start] = [d for name, d in events if name == "message_start"]
    [delta] = [d for name, d in events if name == "message_delta"]
    assert start["message"]["usage"]["input_tokens"] == _estimate() > 0
    # The closing figures and the record are the upstream's.
    assert (delta["usage"]["input_tokens"], delta["usage"]["output_tokens"]) == (real_input, real_output)
    [event] = gw.events
    assert (event.input_tokens, event.output_tokens, event.tokens_estimated) == (
        real_input,
        real_output,
        False,
    )


async def test_message_start_keeps_an_upstream_prompt_figure(make_gateway: Callable[..., Gateway]) -> None:
    first = orjson.loads(gemini_stream(("Hi", " there"))[0].split(b"data: ", 1)[1])
    first["usageMetadata"] = {"promptTokenCount": 31, "totalTokenCount": 31}
    chunks = [sse(first, crlf=True), gemini_stream(("Hi", " there"))[1]]
    gw = make_gateway(_streaming(chunks), make_snapshot(formats={"up": "gemini"}))
    response = await gw.client.post("/v1/messages", json=MESSAGES, headers=ANTHROPIC_CALLER)
    [start] = [d for name, d in sse_events(response.text) if name == "message_start"]
    assert start["message"]["usage"]["input_tokens"] == 31


# --- retry hints on refused calls -------------------------------------------------------


def _refusal(status: int, body: dict[str, Any], **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body, headers=headers)


OPENAI_429 = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
ANTHROPIC_529 = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def test_retry_after_reaches_openai_caller(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_refusal(429, OPENAI_429, **{"retry-after": "7", "retry-after-ms": "6500"}))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 429
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("7", "6500")


@pytest.mark.parametrize("status", [503, 529])
async def test_retry_after_survives_translation(make_gateway: Callable[..., Gateway], status: int) -> None:
    gw = make_gateway(
        _refusal(status, ANTHROPIC_529, **{"retry-after": "3"}), make_snapshot(formats={"up": "anthropic"})
    )
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code >= 500
    assert response.json()["error"]["message"] == "Overloaded"
    assert response.headers["retry-after"] == "3"


async def test_retry_after_reaches_anthropic_caller_of_openai_upstream(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(_refusal(429, OPENAI_429, **{"retry-after": "2"}))
    response = await gw.client.post(
        "/v1/messages", json={**MESSAGES, "stream": False}, headers=ANTHROPIC_CALLER
    )
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "2"


async def test_retry_after_is_not_copied_from_other_errors(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_refusal(400, {"error": {"message": "bad"}}, **{"retry-after": "9"}))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 400
    assert "retry-after" not in response.headers


async def test_a_target_that_answers_after_failover_sends_no_retry_hint(
    make_gateway: Callable[..., Gateway],
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            return httpx.Response(429, json=OPENAI_429, headers={"retry-after": "7"})
        return httpx.Response(200, json=openai_completion())

    snapshot = make_snapshot(
        base_urls={"a": "http://a.test/v1", "b": "http://b.test/v1"}, targets=[("a", "x", 0), ("b", "y", 1)]
    )
    gw = make_gateway(handle, snapshot)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 200
    assert "retry-after" not in response.headers
