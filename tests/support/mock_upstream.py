"""A mock OpenAI-compatible upstream that speaks the real wire format, for tests.

Behaviour is chosen by the upstream model name the gateway sends, so one server can
play every part:
  - anything else      echo the last user message (non-stream JSON or SSE with usage)
  - "error-<status>"   answer <status> with an OpenAI error body
  - "slow-<ms>"        wait <ms> before answering (timeouts)
  - "drop"             close the connection without answering
It records every request it receives at GET /_requests (and clears it on DELETE).

Run: python -m tests.support.mock_upstream --port N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

RECEIVED: list[dict[str, Any]] = []


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _completion(model: str, text: str, prompt_tokens: int) -> dict[str, Any]:
    words = text.split() or ["(empty)"]
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"echo: {text}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words) + 1,
            "total_tokens": prompt_tokens + len(words) + 1,
        },
    }


async def _stream(model: str, text: str, prompt_tokens: int, include_usage: bool):  # type: ignore[no-untyped-def]
    base = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    pieces = ["echo:"] + text.split()

    def event(payload: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    yield event(
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
    )
    for i, piece in enumerate(pieces):
        content = piece if i == 0 else " " + piece
        yield event({**base, "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]})
        await asyncio.sleep(0.005)
    yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }
        yield event({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    raw = await request.body()
    body = json.loads(raw)
    RECEIVED.append({"headers": dict(request.headers), "body": body, "raw": raw.decode()})
    model = str(body.get("model", ""))
    if model.startswith("error-"):
        status = int(model.split("-", 1)[1])
        return JSONResponse(
            {"error": {"message": f"mock upstream error {status}", "type": "mock_error", "code": "mock"}},
            status_code=status,
        )
    if model.startswith("slow-"):
        await asyncio.sleep(int(model.split("-", 1)[1]) / 1000)
    if model == "drop":
        raise ConnectionAbortedError("dropped on purpose")
    text = _last_user_text(body.get("messages") or [])
    prompt_tokens = max(1, len(text.split()))
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            _stream(model, text, prompt_tokens, include_usage), media_type="text/event-stream"
        )
    return JSONResponse(_completion(model, text, prompt_tokens))


async def received(request: Request) -> Response:
    if request.method == "DELETE":
        RECEIVED.clear()
        return Response(status_code=204)
    return JSONResponse(RECEIVED)


async def models(_request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "mock-upstream", "object": "model"}]})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_requests", received, methods=["GET", "DELETE"]),
    ]
)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
