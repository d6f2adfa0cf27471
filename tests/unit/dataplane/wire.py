"""Upstream answers in each provider's wire format (shapes from their API docs)."""

from __future__ import annotations

from typing import Any

import orjson


def sse(obj: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(obj) + end


def anthropic_message(
    text: str = "Hi from Claude",
    *,
    usage: dict[str, int] | None = None,
    with_usage: bool = True,
    model: str = "claude-up",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    if with_usage:
        body["usage"] = usage or {
            "input_tokens": 12,
            "output_tokens": 6,
            "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 2,
        }
    return body


def anthropic_stream(
    pieces: tuple[str, ...] = ("Hello", " there"), *, output_tokens: int = 15
) -> list[bytes]:
    events = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-up",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1},
                },
            },
            "message_start",
        ),
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
    ]
    for piece in pieces:
        events.append(
            sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                "content_block_delta",
            )
        )
    events += [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return events


def gemini_response(text: str = "Hi from Gemini", *, usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "candidates": [
            {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "modelVersion": "gemini-up",
    }
    if usage:
        body["usageMetadata"] = {
            "promptTokenCount": 9,
            "candidatesTokenCount": 3,
            "totalTokenCount": 14,
            "cachedContentTokenCount": 2,
            "thoughtsTokenCount": 2,
        }
    return body


def gemini_stream(pieces: tuple[str, ...] = ("Hello", " there")) -> list[bytes]:
    chunks = []
    for i, piece in enumerate(pieces):
        chunk: dict[str, Any] = {
            "candidates": [{"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}],
            "modelVersion": "gemini-up",
        }
        if i == len(pieces) - 1:
            chunk["candidates"][0]["finishReason"] = "STOP"
            chunk["usageMetadata"] = {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12}
        chunks.append(sse(chunk, crlf=True))
    return chunks


def openai_stream(pieces: tuple[str, ...] = ("Hel", "lo"), *, usage: bool = True) -> list[bytes]:
    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-up",
            "choices": choices,
        }

    events = [sse(chunk({"role": "assistant", "content": ""}))]
    events += [sse(chunk({"content": piece})) for piece in pieces]
    events.append(sse(chunk({}, "stop")))
    if usage:
        events.append(
            sse({**chunk(None), "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}})
        )
    events.append(b"data: [DONE]\n\n")
    return events


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """(event name, data JSON) of each event of an SSE body; [DONE] as the string."""
    out: list[tuple[str | None, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name = None
        data = None
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                raw = line[5:].strip()
                data = raw if raw == "[DONE]" else orjson.loads(raw)
        if data is not None:
            out.append((name, data))
    return out
