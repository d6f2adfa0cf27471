"""Billing of abnormal calls (docs/billing.md): the caller goes away mid-stream, the
upstream fails or goes silent mid-stream, the upstream reports no usage; and streams
are metered with bounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from switchyard_dataplane.protocols.ir import TokenUsage
from switchyard_dataplane.providers.anthropic import AnthropicStreamRelay
from switchyard_dataplane.providers.openai_compat import OpenAIStreamRelay
from switchyard_dataplane.stream_metering import MeteringRelay
from switchyard_dataplane.token_count import estimate_text_tokens

from .conftest import KEY, Gateway, make_snapshot
from .wire import anthropic_stream, openai_stream, sse, sse_events

SSE = {"content-type": "text/event-stream"}
PRICED = pytest.approx


class _Stream(httpx.AsyncByteStream):
    """Yields `chunks`; after `pause_after` of them waits for `resume` (set by the test
    once the caller is gone), then yields the rest — or raises `fail` instead."""

    def __init__(
        self,
        chunks: list[bytes],
        *,
        pause_after: int | None = None,
        resume: asyncio.Event | None = None,
        fail: Exception | None = None,
    ) -> None:
        self._chunks = chunks
        self._pause_after = pause_after
        self._resume = resume
        self._fail = fail
        self.yielded = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for n, chunk in enumerate(self._chunks):
            if n == self._pause_after:
                if self._fail is not None:
                    raise self._fail
                assert self._resume is not None
                await asyncio.wait_for(self._resume.wait(), 5)
            self.yielded += 1
            yield chunk


async def _call(
    gw: Gateway,
    path: str,
    body: dict[str, Any],
    headers: list[tuple[bytes, bytes]],
    *,
    leave_after: int | None,
) -> tuple[list[bytes], asyncio.Event]:
    """Calls the ASGI app as a server would; the caller disconnects once it has
    received `leave_after` body chunks. Returns the body chunks it received and the
    event set when it disconnected."""
    received: list[bytes] = []
    enough = asyncio.Event()
    gone = asyncio.Event()
    done = asyncio.Event()
    parts = [orjson.dumps(body)]

    async def receive() -> dict[str, Any]:
        if parts:
            return {"type": "http.request", "body": parts.pop(), "more_body": False}
        if leave_after is None:
            await done.wait()
        else:
            await enough.wait()
        gone.set()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if message.get("body"):
                received.append(message["body"])
            if leave_after is not None and len(received) >= leave_after:
                enough.set()
            if not message.get("more_body"):
                done.set()

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("198.51.100.7", 1234),
    }
    await asyncio.wait_for(gw.app(scope, receive, send), 10)  # type: ignore[arg-type]
    return received, gone


def _content_text(chunks: list[bytes]) -> str:
    text = []
    for _, data in sse_events(b"".join(chunks).decode()):
        if isinstance(data, dict):
            for choice in data.get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text.append(delta["text"])
    return "".join(text)


OPENAI_CALLER = [(b"authorization", f"Bearer {KEY}".encode())]
ANTHROPIC_CALLER = [(b"x-api-key", KEY.encode()), (b"anthropic-version", b"2023-06-01")]
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "tell me a long story"}], "stream": True}
PIECES = tuple(f" word{n} and some more text" for n in range(8))


async def test_client_disconnect_mid_stream_bills_what_was_read(make_gateway: Callable[..., Gateway]) -> None:
    resume = asyncio.Event()
    stream = _Stream(openai_stream(PIECES), pause_after=4, resume=resume)
    gw = make_gateway(lambda request: httpx.Response(200, stream=stream, headers=SSE))

    async def caller() -> list[bytes]:
        received, gone = await _call(gw, "/v1/chat/completions", CHAT, OPENAI_CALLER, leave_after=3)
        return received

    task = asyncio.create_task(caller())
    # Let the upstream go on only once the caller is gone: the gateway then stops reading.
    while not gw.upstream_requests or stream.yielded < 4:
        await asyncio.sleep(0.01)
    resume.set()
    received = await task

    [event] = gw.events
    assert (event.status, event.error_type, event.client_disconnect) == (499, "client_closed", True)
    assert stream.yielded < len(openai_stream(PIECES))  # the gateway stopped reading
    # The usage chunk never came: everything the upstream produced until then is
    # counted locally, the prompt too.
    relayed = _content_text(received)
    assert relayed and event.output_tokens == estimate_text_tokens(relayed)
    assert event.input_tokens > 0 and event.tokens_estimated is True
    assert event.cost == PRICED((event.input_tokens * 2.0 + event.output_tokens * 10.0) / 1e6)
    assert event.unpriced is False


async def test_client_disconnect_keeps_the_anthropic_prompt_figures(
    make_gateway: Callable[..., Gateway],
) -> None:
    resume = asyncio.Event()
    chunks = anthropic_stream(PIECES)
    stream = _Stream(chunks, pause_after=6, resume=resume)
    gw = make_gateway(
        lambda request: httpx.Response(200, stream=stream, headers=SSE),
        make_snapshot(formats={"up": "anthropic"}),
    )
    body = {**CHAT, "max_tokens": 500}
    task = asyncio.create_task(_call(gw, "/v1/messages", body, ANTHROPIC_CALLER, leave_after=5))
    while stream.yielded < 6:
        await asyncio.sleep(0.01)
    resume.set()
    received, _ = await task

    [event] = gw.events
    assert (event.status, event.client_disconnect) == (499, True)
    # message_start reported the prompt (25 + 5 read from cache) and 1 output token;
    # the output so far is counted from the deltas relayed.
    assert (event.input_tokens, event.cached_tokens) == (30, 5)
    assert event.output_tokens == estimate_text_tokens(_content_text(received)) > 1
    assert event.tokens_estimated is True


async def test_complete_stream_after_no_disconnect_is_billed_at_reported_usage(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(lambda request: httpx.Response(200, stream=_Stream(openai_stream(PIECES)), headers=SSE))
    await _call(gw, "/v1/chat/completions", CHAT, OPENAI_CALLER, leave_after=None)
    [event] = gw.events
    assert (event.status, event.client_disconnect, event.tokens_estimated) == (200, False, False)
    assert (event.input_tokens, event.output_tokens) == (11, 2)  # the upstream's usage chunk


async def test_upstream_error_mid_stream_bills_what_was_produced(
    make_gateway: Callable[..., Gateway],
) -> None:
    error = sse({"error": {"message": "The server had an error", "type": "server_error", "code": None}})
    chunks = openai_stream(PIECES, usage=False)[:5] + [error]
    gw = make_gateway(lambda request: httpx.Response(200, content=b"".join(chunks), headers=SSE))
    await _call(gw, "/v1/chat/completions", CHAT, OPENAI_CALLER, leave_after=None)
    [event] = gw.events
    assert (event.status, event.error_type, event.client_disconnect) == (200, "upstream_stream_error", False)
    assert event.output_tokens == estimate_text_tokens("".join(PIECES[:4]))
    assert event.tokens_estimated is True and event.cost > 0


async def test_upstream_timeout_mid_stream_bills_what_was_read(make_gateway: Callable[..., Gateway]) -> None:
    stream = _Stream(openai_stream(PIECES), pause_after=3, fail=httpx.ReadTimeout("silent upstream"))
    gw = make_gateway(lambda request: httpx.Response(200, stream=stream, headers=SSE))
    received, _ = await _call(gw, "/v1/chat/completions", CHAT, OPENAI_CALLER, leave_after=None)
    [event] = gw.events
    assert (event.status, event.error_type) == (200, "upstream_stream_interrupted")
    assert [a.outcome for a in event.attempts] == ["timeout"]
    assert event.output_tokens == estimate_text_tokens("".join(PIECES[:2])) > 0
    assert event.tokens_estimated is True


async def test_stream_without_usage_is_counted_locally(make_gateway: Callable[..., Gateway]) -> None:
    # The caller did not ask for usage and the upstream ignores stream_options.
    chunks = openai_stream(PIECES, usage=False)
    gw = make_gateway(lambda request: httpx.Response(200, content=b"".join(chunks), headers=SSE))
    await _call(gw, "/v1/chat/completions", CHAT, OPENAI_CALLER, leave_after=None)
    [event] = gw.events
    assert (event.status, event.error_type, event.tokens_estimated) == (200, None, True)
    assert event.output_tokens == estimate_text_tokens("".join(PIECES))


# --- the relay on its own ---------------------------------------------------------------


def _openai_chunk(text: str) -> bytes:
    return sse(
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
    )


def test_memory_stays_bounded_on_a_long_stream_without_usage() -> None:
    limit = 4096
    relay = MeteringRelay(OpenAIStreamRelay(), "openai", lambda: 42, buffer_limit=limit)
    pieces = [f" token{n}" for n in range(20_000)]  # ~1.5 MB of SSE
    chunks = [_openai_chunk(p) for p in pieces]
    peak = 0
    for chunk in chunks:
        assert relay.feed(chunk) == chunk  # passed on untouched
        peak = max(peak, relay.buffered_bytes)
    relay.finish()
    usage = relay.usage(complete=True)
    assert peak <= limit + max(len(c) for c in chunks)
    assert relay.buffered_bytes == 0
    # Counted in segments: each cut may split a word, so allow a token per segment.
    whole = estimate_text_tokens("".join(pieces))
    segments = sum(len(c) for c in chunks) // limit + 1
    assert whole <= usage.output_tokens <= whole + segments
    assert (usage.input_tokens, usage.estimated) == (42, True)


def test_reported_usage_wins_when_the_stream_completes() -> None:
    relay = MeteringRelay(OpenAIStreamRelay(), "openai", lambda: pytest.fail("no estimate needed"))
    for chunk in openai_stream(PIECES):
        relay.feed(chunk)
    relay.finish()
    assert relay.usage(complete=True) == TokenUsage(input_tokens=11, output_tokens=2)


def test_cut_short_stream_never_bills_less_than_reported() -> None:
    # The upstream reported more output than the text the gateway saw (e.g. tokens it
    # spent on something it did not stream): its figure stands.
    relay = MeteringRelay(AnthropicStreamRelay(), "anthropic", lambda: 0)
    for chunk in anthropic_stream(("hi",), output_tokens=500):
        relay.feed(chunk)
    relay.finish()
    usage = relay.usage(complete=False)
    assert (usage.output_tokens, usage.estimated) == (500, False)


def test_a_stream_that_cannot_be_counted_is_billed_what_is_known() -> None:
    # A wire the gateway has no decoder for stands in for any decoder failure.
    relay = MeteringRelay(OpenAIStreamRelay(), "no-such-wire", lambda: 3, buffer_limit=10)
    relay.feed(b"data: {not json at all}\n\n" * 4)
    relay.feed(b"more")
    assert relay.buffered_bytes == 0  # not kept once it cannot be counted
    usage = relay.usage(complete=False)
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (3, 0, True)
