"""Anthropic callers of Anthropic upstreams: bodies and streams pass through unchanged
(only the model spliced in), usage read from the answer and the stream's events."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson

from .conftest import KEY, Gateway, make_snapshot
from .wire import anthropic_message, anthropic_stream

CALLER = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
# Odd spacing and key order on purpose: re-encoding would change these bytes.
REQUEST = (
    b'{ "model" : "chat", "max_tokens": 64,\n  "messages": [{"role": "user", "content": "hi \\u00e9"}],'
    b'  "metadata": {"model": "chat"} }'
)


def _snapshot() -> object:
    return make_snapshot(formats={"up": "anthropic"}, base_urls={"up": "https://api.anthropic.test"})


async def test_body_passes_through_both_ways(make_gateway: Callable[..., Gateway]) -> None:
    answer = orjson.dumps(anthropic_message(), option=orjson.OPT_INDENT_2)
    gw = make_gateway(lambda r: httpx.Response(200, content=answer), _snapshot())
    response = await gw.client.post("/v1/messages", content=REQUEST, headers=CALLER)
    assert response.status_code == 200
    assert response.content == answer
    [upstream] = gw.upstream_requests
    assert upstream.content == REQUEST.replace(b'"model" : "chat"', b'"model" : "gpt-up"')
    [event] = gw.events
    # Anthropic's input_tokens leaves cache reads and writes out; the event counts them in.
    assert (event.input_tokens, event.output_tokens, event.cached_tokens) == (18, 6, 4)
    assert event.tokens_estimated is False
    assert event.cost == (18 * 2.0 + 6 * 10.0) / 1e6


async def test_stream_relayed_byte_for_byte(make_gateway: Callable[..., Gateway]) -> None:
    events = anthropic_stream()
    # Cut the stream at odd places, as a network would.
    raw = b"".join(events)
    cuts = [raw[:17], raw[17:300], raw[300:301], raw[301:]]
    gw = make_gateway(
        lambda r: httpx.Response(200, content=_Chunks(cuts), headers={"content-type": "text/event-stream"}),
        _snapshot(),
    )
    body = REQUEST.replace(b'"max_tokens"', b'"stream": true, "max_tokens"')
    response = await gw.client.post("/v1/messages", content=body, headers=CALLER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content == raw
    [event] = gw.events
    assert event.stream is True
    assert (event.input_tokens, event.cached_tokens, event.output_tokens) == (30, 5, 15)
    assert event.tokens_estimated is False


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for chunk in self._chunks:
            yield chunk


async def test_usage_counted_locally_when_the_upstream_reports_none(
    make_gateway: Callable[..., Gateway],
) -> None:
    answer = orjson.dumps(anthropic_message("a fairly long answer " * 20, with_usage=False))
    gw = make_gateway(lambda r: httpx.Response(200, content=answer), _snapshot())
    response = await gw.client.post("/v1/messages", content=REQUEST, headers=CALLER)
    assert response.content == answer
    [event] = gw.events
    assert event.tokens_estimated is True
    assert event.input_tokens > 0 and event.output_tokens >= 40
