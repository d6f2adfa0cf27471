"""Anthropic Messages (`POST /v1/messages`, `/v1/messages/count_tokens`) in the real
wire format, with the validations of the real API that a translator can trip over:
max_tokens required, user/assistant roles only, tool_result ids answering a tool_use,
thinking budget >= 1024 and < max_tokens, thinking blocks sent back with their
signature unchanged."""

from __future__ import annotations

import json
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
    signature_for,
    wants_reasoning,
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}


def check_auth(headers: dict[str, str]) -> None:
    # Current SDKs send the key as a Bearer token; older ones (and most gateways) as x-api-key.
    if not headers.get("x-api-key") and not headers.get("authorization", "").startswith("Bearer "):
        raise MockUnauthorized("x-api-key header is required")
    if not headers.get("anthropic-version"):
        raise MockInvalid("anthropic-version: header is required")


def _block_text(block: dict[str, Any], where: str, turn: Turn) -> str:
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise MockInvalid(f"{where}.text: Field required")
        return str(block["text"])
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict) or source.get("type") not in ("base64", "url"):
            raise MockInvalid(f"{where}.source: expected a base64 or url source")
        if source["type"] == "base64" and not (source.get("media_type") and source.get("data")):
            raise MockInvalid(f"{where}.source: media_type and data are required")
        if source["type"] == "url" and not isinstance(source.get("url"), str):
            raise MockInvalid(f"{where}.source.url: Field required")
        turn.prompt_images += 1
        return ""
    raise MockInvalid(f"{where}.type: unexpected block type {kind!r}")


def _content_text(content: Any, where: str, turn: Turn) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        raise MockInvalid(f"{where}: Input should be a valid list")
    before = turn.prompt_images
    texts = [
        _block_text(b, f"{where}[{i}]", turn) if isinstance(b, dict) else "" for i, b in enumerate(content)
    ]
    return " ".join(t for t in texts if t), turn.prompt_images - before


def parse_messages(body: Any, *, count_only: bool = False) -> Turn:
    if not isinstance(body, dict):
        raise MockInvalid("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str):
        raise MockInvalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not count_only and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise MockInvalid("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MockInvalid("messages: Field required")
    turn = Turn(model=model)
    texts: list[str] = []
    tool_use_ids: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise MockInvalid(f"{where}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if message["role"] == "assistant" and isinstance(content, list):
            tool_use_ids = set()
            for j, block in enumerate(content):
                if not isinstance(block, dict):
                    raise MockInvalid(f"{where}.content.{j}: Input should be an object")
                if block.get("type") == "tool_use":
                    if not isinstance(block.get("input"), dict):
                        raise MockInvalid(f"{where}.content.{j}.tool_use.input: Input should be an object")
                    tool_use_ids.add(str(block.get("id")))
                    texts.append(json.dumps(block["input"]))
                elif block.get("type") == "thinking":
                    if block.get("signature") != signature_for(str(block.get("thinking"))):
                        raise MockInvalid(f"{where}.content.{j}: Invalid `signature` in `thinking` block")
                elif block.get("type") == "redacted_thinking":
                    continue
                else:
                    texts.append(_block_text(block, f"{where}.content.{j}", turn))
            continue
        if message["role"] == "assistant":
            texts.append(_content_text(content, f"{where}.content", turn)[0])
            continue
        turn.user_turns += 1
        results: list[str] = []
        plain: list[Any] = []
        for j, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and block.get("type") == "tool_result":
                if block.get("tool_use_id") not in tool_use_ids:
                    raise MockInvalid(
                        f"{where}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )
                result, _ = _content_text(block.get("content", ""), f"{where}.content.{j}.content", turn)
                results.append(result)
            else:
                plain.append(block)
        text, images = _content_text(
            plain if isinstance(content, list) else content, f"{where}.content", turn
        )
        texts.extend([*results, text])
        turn.tool_results = results
        if not results:
            turn.last_user_text, turn.images = text, images
        tool_use_ids = set()
    system = body.get("system")
    if system is not None:
        turn.system = _content_text(system, "system", turn)[0]
        texts.append(turn.system)
    check_types(body, ("temperature", "top_p"), ("top_k",))
    for i, tool in enumerate(list_field(body, "tools")):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise MockInvalid(f"tools.{i}.name: Field required")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise MockInvalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        turn.tools.append(tool["name"])
    thinking = body.get("thinking")
    requested = False
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise MockInvalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if not count_only and budget >= max_tokens:  # type: ignore[operator]
            raise MockInvalid("`max_tokens` must be greater than `thinking.budget_tokens`")
        requested = True
    elif isinstance(thinking, dict) and thinking.get("type") == "adaptive":
        requested = True
    turn.thinking = wants_reasoning(model, requested)
    turn.prompt_text = " ".join(t for t in texts if t)
    return turn


def _usage(plan: Plan, output_tokens: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": plan.output_tokens if output_tokens is None else output_tokens,
    }


def _blocks(plan: Plan) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if plan.thinking:
        blocks.append(
            {"type": "thinking", "thinking": plan.thinking, "signature": signature_for(plan.thinking)}
        )
    if plan.text:
        blocks.append({"type": "text", "text": plan.text})
    if plan.tool_call:
        name, args = plan.tool_call
        blocks.append({"type": "text", "text": "Let me check the weather."})
        blocks.append({"type": "tool_use", "id": "toolu_mock_weather", "name": name, "input": args})
    return blocks


def message(turn: Turn) -> dict[str, Any]:
    plan = make_plan(turn)
    result: dict[str, Any] = {
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": turn.model,
        "content": _blocks(plan),
        "stop_reason": "tool_use" if plan.tool_call else "end_turn",
        "stop_sequence": None,
    }
    if plan.with_usage:
        result["usage"] = _usage(plan)
    return result


def count_tokens(turn: Turn) -> dict[str, Any]:
    return {"input_tokens": make_plan(turn).input_tokens}


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


async def stream(turn: Turn) -> AsyncIterator[bytes]:
    plan = make_plan(turn)
    start: dict[str, Any] = {
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": turn.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if plan.with_usage:
        start["usage"] = _usage(plan, output_tokens=1)
    yield _event("message_start", {"message": start})
    yield _event("ping", {})
    for index, block in enumerate(_blocks(plan)):
        kind = block["type"]
        if kind == "thinking":
            yield _event(
                "content_block_start",
                {"index": index, "content_block": {**block, "thinking": "", "signature": ""}},
            )
            for piece in pieces(block["thinking"]):
                yield _event(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "thinking_delta", "thinking": piece}},
                )
            yield _event(
                "content_block_delta",
                {"index": index, "delta": {"type": "signature_delta", "signature": block["signature"]}},
            )
        elif kind == "text":
            yield _event(
                "content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}
            )
            for piece in pieces(block["text"]):
                yield _event(
                    "content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}}
                )
        else:
            yield _event("content_block_start", {"index": index, "content_block": {**block, "input": {}}})
            for fragment in json_fragments(block["input"]):
                yield _event(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "input_json_delta", "partial_json": fragment}},
                )
        yield _event("content_block_stop", {"index": index})
    delta: dict[str, Any] = {
        "delta": {"stop_reason": "tool_use" if plan.tool_call else "end_turn", "stop_sequence": None}
    }
    if plan.with_usage:
        delta["usage"] = {"output_tokens": plan.output_tokens}
    yield _event("message_delta", delta)
    yield _event("message_stop", {})
