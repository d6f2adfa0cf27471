"""The OpenAI Chat Completions codec (also DeepSeek / Qwen / vLLM dialects).

Reasoning: DeepSeek and Qwen return model reasoning as `reasoning_content` (some vLLM
builds as `reasoning`); it becomes a `ThinkingPart` without signature. OpenAI's format has
no place for Anthropic's thinking signature, so it is dropped on the way out to an OpenAI
caller; an unsigned thinking part sent back is left out of Anthropic requests (Anthropic
rejects unsigned thinking), see `anthropic_request`.
"""

from __future__ import annotations

import time
from typing import Any

from .checks import bad_upstream
from .ir import (
    ChatRequest,
    ChatResponse,
    ErrorInfo,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)
from .openai_request import build_openai_request, parse_openai_request
from .openai_stream import OpenAIStreamDecoder, OpenAIStreamEncoder
from .openai_wire import (
    error_type,
    finish_reason,
    parse_openai_error,
    stop_reason,
    usage_from_openai,
    usage_to_openai,
)

__all__ = ["OpenAIChatCodec"]


class OpenAIChatCodec:
    name = "openai"

    def parse_request(self, payload: dict[str, Any]) -> ChatRequest:
        return parse_openai_request(payload)

    def build_request(self, request: ChatRequest, upstream_model: str) -> dict[str, Any]:
        return build_openai_request(request, upstream_model)

    def parse_response(self, payload: dict[str, Any]) -> ChatResponse:
        try:
            choices = payload.get("choices") or [{}]
            choice = choices[0]
            message = choice.get("message") or {}
            parts: list[Part] = []
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if reasoning:
                parts.append(ThinkingPart(str(reasoning)))
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if content:
                parts.append(TextPart(str(content)))
            if message.get("refusal") and not content:
                parts.append(TextPart(str(message["refusal"])))
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                parts.append(
                    ToolCallPart(str(call.get("id", "")), str(fn["name"]), fn.get("arguments") or "")
                )
            usage = payload.get("usage")
            return ChatResponse(
                id=str(payload.get("id") or ""),
                model=str(payload.get("model") or ""),
                parts=parts,
                stop_reason=stop_reason(choice.get("finish_reason")),
                usage=usage_from_openai(usage) if isinstance(usage, dict) else None,
                created=payload.get("created") if isinstance(payload.get("created"), int) else None,
            )
        except (AttributeError, IndexError, KeyError, TypeError):
            raise bad_upstream("chat completion") from None

    def build_response(self, response: ChatResponse, model: str) -> dict[str, Any]:
        text = "".join(p.text for p in response.parts if isinstance(p, TextPart))
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        thinking = "".join(p.text for p in response.parts if isinstance(p, ThinkingPart))
        if thinking:
            message["reasoning_content"] = thinking
        calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
        if calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
        body: dict[str, Any] = {
            "id": response.id,
            "object": "chat.completion",
            "created": response.created if response.created is not None else int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(response.stop_reason),
                }
            ],
        }
        if response.usage is not None:
            body["usage"] = usage_to_openai(response.usage)
        return body

    def stream_decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def stream_encoder(self, model: str, *, include_usage: bool) -> OpenAIStreamEncoder:
        return OpenAIStreamEncoder(model, include_usage=include_usage)

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        return parse_openai_error(status, body)

    def build_error(self, status: int, error: ErrorInfo) -> dict[str, Any]:
        return {
            "error": {
                "message": error.message,
                "type": error_type(error.kind),
                "param": None,
                "code": error.code,
            }
        }
