"""Passthrough, streaming relay, usage capture, failover and the usage event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from .conftest import AUTH, KEY, UPSTREAM_KEY, Gateway, make_snapshot, openai_completion


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _chunk(content: str | None, *, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    obj: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-up",
        "choices": choices,
    }
    if usage is not None:
        obj["usage"] = usage
    return _sse(obj)


USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
STREAM = [_chunk("Hel"), _chunk("lo"), _chunk(None, usage=USAGE), b"data: [DONE]\n\n"]


class _Gated(httpx.AsyncByteStream):
    """Yields chunk n+1 only after the gateway has sent chunk n to its caller."""

    def __init__(self, chunks: list[bytes], relayed: asyncio.Event) -> None:
        self._chunks = chunks
        self._relayed = relayed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            self._relayed.clear()
            yield chunk
            if b"[DONE]" not in chunk and b'"choices":[]' not in chunk:
                await asyncio.wait_for(self._relayed.wait(), 5)


async def _call_asgi(gw: Gateway, body: bytes, relayed: asyncio.Event) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    parts = [body]

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
        "path": "/v1/chat/completions",
        "headers": [(b"authorization", f"Bearer {KEY}".encode()), (b"content-type", b"application/json")],
        "client": ("198.51.100.7", 1234),
    }
    await gw.app(scope, receive, send)  # type: ignore[arg-type]
    return sent


async def test_non_stream_passthrough_only_model_changes(make_gateway: Callable[..., Gateway]) -> None:
    upstream_body = orjson.dumps(openai_completion(prompt=7, completion=3)) + b"\n"
    gw = make_gateway(
        lambda r: httpx.Response(200, content=upstream_body, headers={"content-type": "application/json"})
    )
    body = (
        b'{"model": "chat",\n "messages": [{"role": "user", "content": "hi \\u00e9"}], "temperature": 0.10}'
    )
    response = await gw.client.post("/v1/chat/completions", content=body, headers=AUTH)

    assert response.status_code == 200
    assert response.content == upstream_body
    [sent] = gw.upstream_requests
    assert sent.content == body.replace(b'"model": "chat"', b'"model": "gpt-up"')
    assert str(sent.url) == "http://upstream.test/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.headers["x-extra"] == "1"

    [event] = gw.events
    assert (event.status, event.model, event.upstream_model, event.provider) == (200, "chat", "gpt-up", "up")
    assert (event.input_tokens, event.output_tokens, event.stream) == (7, 3, False)
    assert event.cost == pytest.approx((7 * 2.0 + 3 * 10.0) / 1e6)
    assert event.client_ip == "203.0.113.9"
    assert [a.outcome for a in event.attempts] == ["ok"]
    assert event.latency_ms > 0 and event.ttfb_ms is not None
    assert gw.publisher.messages[0].subject == "usage.acme"
    assert gw.publisher.messages[0].msg_id == event.id


async def test_same_model_name_sends_identical_bytes(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, json=openai_completion()), make_snapshot(targets=[("up", "chat", 0)])
    )
    body = b'{ "messages":[{"role":"user","content":"x"}] , "model":"chat" }'
    await gw.client.post("/v1/chat/completions", content=body, headers=AUTH)
    assert gw.upstream_requests[0].content == body


async def test_stream_relayed_chunk_by_chunk_usage_stripped(make_gateway: Callable[..., Gateway]) -> None:
    relayed = asyncio.Event()
    gw = make_gateway(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Gated(STREAM, relayed)
        )
    )
    body = orjson.dumps({"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    sent = await _call_asgi(gw, body, relayed)

    upstream_body = gw.upstream_requests[0].content
    assert upstream_body.startswith(b'{"stream_options":{"include_usage":true},')
    assert orjson.loads(upstream_body)["model"] == "gpt-up"

    assert sent[0]["status"] == 200
    bodies = [m["body"] for m in sent[1:] if m["body"]]
    # each upstream chunk went out on its own (the gate proves no buffering); the
    # usage-only chunk the caller did not ask for is gone
    assert bodies == [STREAM[0], STREAM[1], STREAM[3]]
    [event] = gw.events
    assert (event.stream, event.input_tokens, event.output_tokens, event.status) == (True, 11, 2, 200)
    assert event.ttfb_ms is not None


async def test_stream_usage_relayed_when_asked(make_gateway: Callable[..., Gateway]) -> None:
    relayed = asyncio.Event()
    gw = make_gateway(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Gated(STREAM, relayed)
        )
    )
    body = orjson.dumps(
        {
            "model": "chat",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user"}],
        }
    )
    sent = await _call_asgi(gw, body, relayed)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"".join(STREAM)
    assert orjson.loads(gw.upstream_requests[0].content)["stream_options"] == {"include_usage": True}
    assert gw.events[0].output_tokens == 2


async def test_stream_split_across_reads_still_strips(make_gateway: Callable[..., Gateway]) -> None:
    raw = b"".join(STREAM)
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    gw = make_gateway(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(pieces))
    )
    body = orjson.dumps({"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    response = await gw.client.post("/v1/chat/completions", content=body, headers=AUTH)
    assert response.content == STREAM[0] + STREAM[1] + STREAM[3]
    assert gw.events[0].input_tokens == 11


async def test_failover_in_priority_order(make_gateway: Callable[..., Gateway]) -> None:
    snap = make_snapshot(
        base_urls={"a": "http://a.test", "b": "http://b.test", "c": "http://c.test"},
        targets=[("c", "model-c", 2), ("a", "model-a", 0), ("b", "model-b", 1)],
    )

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "a.test":
            raise httpx.ConnectError("refused", request=request)
        if host == "b.test":
            return httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})
        return httpx.Response(200, json=openai_completion("model-c"))

    gw = make_gateway(handler, snap)
    response = await gw.client.post(
        "/v1/chat/completions", content=b'{"model":"chat","messages":[{"role":"user"}]}', headers=AUTH
    )
    assert response.status_code == 200
    assert [r.url.host for r in gw.upstream_requests] == ["a.test", "b.test", "c.test"]
    assert [orjson.loads(r.content)["model"] for r in gw.upstream_requests] == [
        "model-a",
        "model-b",
        "model-c",
    ]
    [event] = gw.events
    assert [(a.provider, a.outcome) for a in event.attempts] == [
        ("a", "unreachable"),
        ("b", "error"),
        ("c", "ok"),
    ]
    assert (event.provider, event.upstream_model, event.status) == ("c", "model-c", 200)


async def test_all_targets_fail_returns_last_failure(make_gateway: Callable[..., Gateway]) -> None:
    snap = make_snapshot(
        base_urls={"a": "http://a.test", "b": "http://b.test"}, targets=[("a", "m", 0), ("b", "m", 1)]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            return httpx.Response(502, content=b"bad gateway")
        raise httpx.ReadTimeout("slow", request=request)

    gw = make_gateway(handler, snap)
    response = await gw.client.post(
        "/v1/chat/completions", content=b'{"model":"chat","messages":[{"role":"user"}]}', headers=AUTH
    )
    assert response.status_code == 504
    [event] = gw.events
    assert [a.outcome for a in event.attempts] == ["error", "timeout"]
    assert event.status == 504


async def test_client_error_is_not_retried(make_gateway: Callable[..., Gateway]) -> None:
    snap = make_snapshot(
        base_urls={"a": "http://a.test", "b": "http://b.test"}, targets=[("a", "m", 0), ("b", "m", 1)]
    )
    gw = make_gateway(lambda r: httpx.Response(400, json={"error": {"message": "bad"}}), snap)
    response = await gw.client.post(
        "/v1/chat/completions", content=b'{"model":"chat","messages":[{"role":"user"}]}', headers=AUTH
    )
    assert response.status_code == 400
    assert len(gw.upstream_requests) == 1


async def test_one_event_per_call(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=openai_completion()))
    for body in (
        b'{"model":"chat","messages":[{"role":"user"}]}',
        b"{}",
        b'{"model":"x","messages":[{"role":"user"}]}',
    ):
        await gw.client.post("/v1/chat/completions", content=body, headers=AUTH)
    await gw.client.post("/v1/chat/completions", content=b"{}")  # unauthenticated: no event
    assert [e.status for e in gw.events] == [200, 400, 404]
    assert len({e.id for e in gw.events}) == 3
