"""The built-in `mock` provider: answers in-process, no network, deterministic.

It echoes the last user message back in OpenAI wire format (a chat.completion, or an SSE
stream of one chunk per word), with token counts of one token per whitespace-separated
word, so the quickstart works before any real provider is configured. Callers of other
protocols reach it through translation, like any OpenAI-wire upstream. Embeddings are
deterministic unit vectors derived from the input text.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from .base import ApiFormat, LocalResponse, Operation, UpstreamRequest
from .openai_compat import OpenAICompatAdapter

__all__ = ["MockAdapter"]

_DONE = b"data: [DONE]\n\n"
_CHAT_URL = "mock://local/v1/chat/completions"
_EMBEDDINGS_URL = "mock://local/v1/embeddings"
_EMBEDDING_DIMENSIONS = 16


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class MockAdapter(OpenAICompatAdapter):
    """Request shaping (model splice, usage request), usage and relays are the OpenAI
    ones: the mock speaks that protocol, and going through them exercises the same relay
    path. Only the answer is made in-process."""

    api_format: str = ApiFormat.MOCK
    answers_locally: bool = True

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        return {Operation.CHAT: _CHAT_URL, Operation.EMBEDDINGS: _EMBEDDINGS_URL}

    def static_headers(
        self, api_key: str, extra_headers: dict[str, str], auth_header: str = ""
    ) -> tuple[tuple[str, str], ...]:
        # Answers in-process: no credential to send.
        return (("content-type", "application/json"),)

    def respond_locally(self, request: UpstreamRequest) -> LocalResponse:
        payload = orjson.loads(request.body)
        if request.url == _EMBEDDINGS_URL:
            return _embeddings(payload)
        messages = payload.get("messages") or []
        prompt_tokens = sum(_words(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
        reply = next(
            (
                _text_of(m.get("content"))
                for m in reversed(messages)
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            "",
        )
        model = str(payload.get("model", "mock"))
        completion_id = "chatcmpl-mock-" + hashlib.sha256(request.body).hexdigest()[:24]
        created = int(time.time())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _words(reply),
            "total_tokens": prompt_tokens + _words(reply),
        }
        if not payload.get("stream"):
            body = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            return LocalResponse(status=200, content_type="application/json", chunks=[orjson.dumps(body)])

        def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
            choices = (
                []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            )
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
            }

        events = [_sse(chunk({"role": "assistant", "content": ""}))]
        words = reply.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            if piece:
                events.append(_sse(chunk({"content": piece})))
        events.append(_sse(chunk({}, "stop")))
        options = payload.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            events.append(_sse({**chunk(None), "usage": usage}))
        events.append(_DONE)
        return LocalResponse(status=200, content_type="text/event-stream", chunks=events)


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i] - 127.5) / 127.5 for i in range(_EMBEDDING_DIMENSIONS)]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in raw]


def _embeddings(payload: dict[str, Any]) -> LocalResponse:
    given = payload.get("input")
    inputs = [given] if isinstance(given, str) else given if isinstance(given, list) else []
    texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in inputs]
    tokens = sum(_words(text) for text in texts)
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _vector(text)} for i, text in enumerate(texts)
        ],
        "model": str(payload.get("model", "mock")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return LocalResponse(status=200, content_type="application/json", chunks=[orjson.dumps(body)])
