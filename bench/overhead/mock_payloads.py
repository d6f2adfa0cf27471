"""Every answer the mock upstream can give, encoded once at start-up.

Two wire protocols, each in its real shape so that a gateway parsing them does the
work it would do against the provider:
  OpenAI Chat Completions: a `chat.completion` JSON, and an SSE stream of
    `chat.completion.chunk` events (role chunk, N content chunks, finish chunk, an
    optional usage chunk) ending with `data: [DONE]`;
  Anthropic Messages: a `message` JSON, and the SSE stream `message_start`,
    `content_block_start`, N `content_block_delta` (`text_delta`),
    `content_block_stop`, `message_delta` (stop reason + usage), `message_stop`.
"""

from __future__ import annotations

import json
import time
from typing import Any

OPENAI_MODEL = "mock-gpt"
ANTHROPIC_MODEL = "mock-claude"
TOKEN_TEXT = "hello "
PROMPT_TOKENS = 12

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
CHUNKED_END = b"0\r\n\r\n"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + content_type
        + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class SseStream:
    """One SSE answer: per-event HTTP chunks (used when events are spaced out in time)
    and the whole response in one write (used when there is no delay)."""

    __slots__ = ("events", "whole")

    def __init__(self, events: list[bytes]) -> None:
        self.events = [http_chunk(e) for e in events]
        self.whole = SSE_HEAD + b"".join(self.events) + CHUNKED_END


def _openai(chunks: int, created: int) -> tuple[bytes, SseStream, SseStream]:
    """(JSON response, stream, stream with the usage chunk)."""
    completion_tokens = max(chunks, 1)
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion_tokens,
        "total_tokens": PROMPT_TOKENS + completion_tokens,
    }
    base = {"id": "chatcmpl-mock", "created": created, "model": OPENAI_MODEL, "system_fingerprint": "fp_mock"}
    message = {"role": "assistant", "content": (TOKEN_TEXT * chunks).strip() or "ok"}
    chat = response(
        "200 OK",
        dumps(
            {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            }
        ),
    )

    def event(delta: dict[str, Any] | None, finish: str | None = None, use: Any = None) -> bytes:
        obj: dict[str, Any] = {**base, "object": "chat.completion.chunk"}
        obj["choices"] = (
            [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )
        if use is not None:
            obj["usage"] = use
        return b"data: " + dumps(obj) + b"\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": TOKEN_TEXT}) for _ in range(chunks)]
    events.append(event({}, finish="stop"))
    done = b"data: [DONE]\n\n"
    return chat, SseStream([*events, done]), SseStream([*events, event(None, use=usage), done])


def _anthropic(chunks: int) -> tuple[bytes, SseStream]:
    """(JSON response, stream), as the Messages API documents them."""
    output_tokens = max(chunks, 1)
    message_id = "msg_mock01"
    message = response(
        "200 OK",
        dumps(
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": ANTHROPIC_MODEL,
                "content": [{"type": "text", "text": (TOKEN_TEXT * chunks).strip() or "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": output_tokens},
            }
        ),
    )

    def event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + dumps({"type": name, **data}) + b"\n\n"

    events = [
        event(
            "message_start",
            {
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": ANTHROPIC_MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
                }
            },
        ),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    events += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": TOKEN_TEXT}})
        for _ in range(chunks)
    ]
    events += [
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        event("message_stop", {}),
    ]
    return message, SseStream(events)


class Payloads:
    """The mock's answers for `chunks` content chunks per stream."""

    def __init__(self, chunks: int) -> None:
        created = int(time.time())
        self.chat, self.chat_stream, self.chat_stream_usage = _openai(chunks, created)
        self.message, self.message_stream = _anthropic(chunks)
        self.models = response(
            "200 OK",
            dumps(
                {
                    "object": "list",
                    "data": [
                        {"id": name, "object": "model", "created": created, "owned_by": "mock"}
                        for name in (OPENAI_MODEL, ANTHROPIC_MODEL)
                    ],
                }
            ),
        )
        self.health = response("200 OK", b"ok", b"text/plain")
        self.not_found = response(
            "404 Not Found", dumps({"error": {"message": "not found", "type": "invalid_request_error"}})
        )
        self.bad_request = response(
            "400 Bad Request", dumps({"error": {"message": "bad request", "type": "invalid_request_error"}})
        )
