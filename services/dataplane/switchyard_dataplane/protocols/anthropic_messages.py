"""The Anthropic Messages codec.

Thinking blocks keep their `signature` (and `redacted_thinking` its data) through the IR
so they can be sent back to Anthropic unchanged. Reasoning from an OpenAI-compatible
upstream has no signature: an Anthropic caller gets it as a thinking block with an empty
signature, which comes back unsigned and is then left out of Anthropic requests.
"""

from __future__ import annotations

from typing import Any

import orjson

from .anthropic_request import build_anthropic_request, parse_anthropic_request
from .anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from .anthropic_wire import (
    error_body,
    parse_anthropic_error,
    stop_reason,
    stop_reason_wire,
    usage_from_anthropic,
    usage_to_anthropic,
)
from .checks import bad_upstream, dump_json
from .ir import ChatRequest, ChatResponse, ErrorInfo, Part, TextPart, ThinkingPart, ToolCallPart

__all__ = ["AnthropicMessagesCodec"]


class AnthropicMessagesCodec:
    name = "anthropic"

    def parse_request(self, payload: dict[str, Any]) -> ChatRequest:
        return parse_anthropic_request(payload)

    def build_request(self, request: ChatRequest, upstream_model: str) -> dict[str, Any]:
        return build_anthropic_request(request, upstream_model)

    def parse_response(self, payload: dict[str, Any]) -> ChatResponse:
        try:
            parts: list[Part] = []
            for block in payload.get("content") or []:
                kind = block.get("type")
                if kind == "text":
                    parts.append(TextPart(str(block["text"])))
                elif kind == "thinking":
                    parts.append(ThinkingPart(str(block["thinking"]), block.get("signature") or None))
                elif kind == "redacted_thinking":
                    parts.append(ThinkingPart("", redacted_data=str(block["data"])))
                elif kind == "tool_use":
                    arguments = dump_json(block.get("input") or {})
                    parts.append(ToolCallPart(str(block["id"]), str(block["name"]), arguments))
            usage = payload.get("usage")
            return ChatResponse(
                id=str(payload.get("id") or ""),
                model=str(payload.get("model") or ""),
                parts=parts,
                stop_reason=stop_reason(payload.get("stop_reason")),
                stop_sequence=payload.get("stop_sequence"),
                usage=usage_from_anthropic(usage) if isinstance(usage, dict) else None,
            )
        except (AttributeError, KeyError, TypeError):
            raise bad_upstream("message") from None

    def build_response(self, response: ChatResponse, model: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for part in response.parts:
            if isinstance(part, TextPart):
                if part.text:
                    content.append({"type": "text", "text": part.text})
            elif isinstance(part, ThinkingPart):
                if part.redacted_data is not None:
                    content.append({"type": "redacted_thinking", "data": part.redacted_data})
                else:
                    content.append(
                        {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
                    )
            elif isinstance(part, ToolCallPart):
                content.append({"type": "tool_use", "id": part.id, "name": part.name, "input": _input(part)})
        return {
            "id": response.id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason_wire(response.stop_reason),
            "stop_sequence": response.stop_sequence,
            "usage": usage_to_anthropic(response.usage),
        }

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def stream_encoder(self, model: str, *, include_usage: bool) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(model, include_usage=include_usage)

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        return parse_anthropic_error(status, body)

    def build_error(self, status: int, error: ErrorInfo) -> dict[str, Any]:
        return error_body(error)


def _input(call: ToolCallPart) -> dict[str, Any]:
    """A model's arguments as Anthropic's `input` object. Small models sometimes emit
    arguments that are not a JSON object; the caller then gets them under `arguments`
    rather than losing them."""
    try:
        value = orjson.loads(call.arguments) if call.arguments.strip() else {}
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"arguments": call.arguments}
