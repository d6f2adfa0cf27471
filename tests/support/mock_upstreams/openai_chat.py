"""OpenAI Chat Completions (and Azure OpenAI, and DeepSeek-style `reasoning_content`)
plus OpenAI embeddings, in the real wire format."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

from .behaviour import (
    MockInvalid,
    MockUnauthorized,
    Plan,
    Turn,
    check_types,
    json_fragments,
    list_field,
    make_plan,
    pieces,
    wants_reasoning,
    word_count,
)

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": None if status >= 500 else _ERROR_TYPES.get(status, "error"),
        }
    }


def check_auth(headers: dict[str, str], *, azure: bool, query: dict[str, str]) -> None:
    if azure:
        if not headers.get("api-key"):
            raise MockUnauthorized("Access denied due to missing subscription key (api-key header).")
        if not query.get("api-version"):
            raise MockInvalid("Missing required query parameter: api-version")
    # Some OpenAI-compatible servers take the raw key in x-api-key (auth_header).
    elif not (headers.get("authorization", "").startswith("Bearer ") or headers.get("x-api-key")):
        raise MockUnauthorized("You didn't provide an API key (Authorization: Bearer).")


def _text_of(content: Any, where: str) -> tuple[str, int]:
    """(text, image count) of a message content: a string or a list of parts."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        raise MockInvalid(f"{where}.content: expected a string or an array")
    texts: list[str] = []
    images = 0
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise MockInvalid(f"{where}.content[{i}]: expected an object with a type")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise MockInvalid(f"{where}.content[{i}].text: expected a string")
            texts.append(part["text"])
        elif part["type"] == "image_url":
            url = (
                (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
            )
            if not isinstance(url, str) or not (url.startswith("http") or url.startswith("data:image/")):
                raise MockInvalid(f"{where}.content[{i}].image_url.url: expected an http(s) or data URL")
            images += 1
        else:
            raise MockInvalid(f"{where}.content[{i}].type: unsupported part type {part['type']!r}")
    return " ".join(texts), images


def parse_chat(body: Any, model: str) -> Turn:
    if not isinstance(body, dict):
        raise MockInvalid("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MockInvalid("messages: expected a non-empty array")
    turn = Turn(model=model)
    call_ids: set[str] = set()
    texts: list[str] = []
    systems: list[str] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise MockInvalid(f"{where}.role: expected one of {sorted(ROLES)}")
        role = message["role"]
        text, images = _text_of(message.get("content"), where)
        texts.append(text)
        turn.prompt_images += images
        if role in ("system", "developer"):
            systems.append(text)
        elif role == "user":
            turn.user_turns += 1
            turn.last_user_text, turn.images, turn.tool_results = text, images, []
        elif role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                    raise MockInvalid(f"{where}.tool_calls: expected function with string arguments")
                json.loads(function["arguments"])  # the real API rejects non-JSON arguments too
                call_ids.add(str(call.get("id")))
                texts.append(function["arguments"])
            turn.tool_results = []
        elif role == "tool":
            if message.get("tool_call_id") not in call_ids:
                raise MockInvalid(f"{where}.tool_call_id: does not answer a preceding tool call")
            turn.tool_results.append(text)
    turn.system = " ".join(s for s in systems if s)
    turn.prompt_text = " ".join(texts)
    check_types(
        body,
        ("temperature", "top_p", "frequency_penalty", "presence_penalty"),
        ("max_tokens", "max_completion_tokens", "n", "seed"),
    )
    for i, tool in enumerate(list_field(body, "tools")):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise MockInvalid(f"tools[{i}].function.name: required")
        if not isinstance(function.get("parameters", {}), dict):
            raise MockInvalid(f"tools[{i}].function.parameters: expected an object")
        turn.tools.append(function["name"])
    effort = body.get("reasoning_effort")
    thinking_flag = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled"
    turn.thinking = wants_reasoning(model, (effort is not None and effort != "none") or thinking_flag)
    return turn


def _usage(plan: Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
    }


def _call_id(model: str) -> str:
    return "call_" + hashlib.sha256(model.encode()).hexdigest()[:20]


def completion(turn: Turn) -> dict[str, Any]:
    plan = make_plan(turn)
    message: dict[str, Any] = {"role": "assistant", "content": plan.text, "refusal": None}
    if plan.thinking:
        message["reasoning_content"] = plan.thinking
    finish = "stop"
    if plan.tool_call:
        name, args = plan.tool_call
        message["tool_calls"] = [
            {
                "id": _call_id(turn.model),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
        ]
        finish = "tool_calls"
    result: dict[str, Any] = {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": turn.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "system_fingerprint": "fp_mock",
    }
    if plan.with_usage:
        result["usage"] = _usage(plan)
    return result


async def stream(turn: Turn, include_usage: bool) -> AsyncIterator[bytes]:
    plan = make_plan(turn)
    base = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": turn.model,
        "system_fingerprint": "fp_mock",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces(plan.thinking or "") if plan.thinking else []:
        yield chunk({"reasoning_content": piece})
    for piece in pieces(plan.text) if plan.text else []:
        yield chunk({"content": piece})
    finish = "stop"
    if plan.tool_call:
        name, args = plan.tool_call
        head = {"index": 0, "id": _call_id(turn.model), "type": "function"}
        yield chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        for fragment in json_fragments(args):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
        finish = "tool_calls"
    yield chunk({}, finish)
    if include_usage and plan.with_usage:
        yield b"data: " + json.dumps({**base, "choices": [], "usage": _usage(plan)}).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def _vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dimensions)]


def embeddings(body: Any, model: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MockInvalid("request body must be a JSON object")
    raw = body.get("input")
    if isinstance(raw, str):
        inputs: list[str] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        inputs = list(raw)
    elif isinstance(raw, list) and raw and all(isinstance(item, int) for item in raw):
        inputs = [" ".join(map(str, raw))]  # one input given as token ids
    else:
        raise MockInvalid("input: expected a string, an array of strings or an array of tokens")
    dimensions = body.get("dimensions") or 8
    if not isinstance(dimensions, int) or dimensions < 1:
        raise MockInvalid("dimensions: expected a positive integer")
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = _vector(text, dimensions)
        encoded: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    result: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if not model.startswith("no-usage"):
        tokens = sum(max(1, word_count(text)) for text in inputs)
        result["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return result
