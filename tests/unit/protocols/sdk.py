"""Read translated output with the official SDKs (over a mock transport), so tests assert
on what an application would get, not on raw JSON. The installed SDKs run on `httpx2`."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
from anthropic.types import Message
from openai.types.chat import ChatCompletion


def _client(body: bytes, content_type: str) -> httpx2.Client:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    return httpx2.Client(transport=httpx2.MockTransport(answer))


def _anthropic(body: bytes, content_type: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url="http://gw", http_client=_client(body, content_type))


def _openai(body: bytes, content_type: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="k", base_url="http://gw/v1", http_client=_client(body, content_type))


_MSG: dict[str, Any] = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
_CHAT: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def anthropic_stream_message(sse: bytes) -> Message:
    with _anthropic(sse, "text/event-stream").messages.stream(**_MSG) as stream:
        for _ in stream:
            pass
        return stream.get_final_message()


def anthropic_message(body: bytes) -> Message:
    return _anthropic(body, "application/json").messages.create(**_MSG)


def openai_stream_completion(sse: bytes) -> tuple[ChatCompletion, list[Any]]:
    """The SDK's accumulated completion and the raw chunks it parsed."""
    chunks: list[Any] = []
    with _openai(sse, "text/event-stream").chat.completions.stream(**_CHAT) as stream:
        for event in stream:
            if event.type == "chunk":
                chunks.append(event.chunk)
        return stream.get_final_completion(), chunks


def openai_completion(body: bytes) -> ChatCompletion:
    return _openai(body, "application/json").chat.completions.create(**_CHAT)
