"""Validation of caller request bodies (pure): OpenAI chat completions and embeddings,
Anthropic messages and count_tokens. Only the fields the gateway relies on are checked;
everything else is the upstream's (or the codec's, when translating)."""

from __future__ import annotations

from typing import Any

import orjson
from switchyard_common.errors import InvalidRequest

from .providers.base import ChatCall, Wire

__all__ = [
    "invalid_type",
    "json_object",
    "model_field",
    "parse_chat_body",
    "parse_count_tokens_body",
    "parse_embeddings_body",
    "parse_messages_body",
    "required_field",
]

Headers = tuple[tuple[str, str], ...]


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return payload


def required_field(payload: dict[str, Any], param: str, message: str = "") -> Any:
    """A top-level field that must be present (null counts as absent)."""
    value = payload.get(param)
    if value is None:
        raise InvalidRequest(
            message or f"you must provide a {param} parameter", code="missing_required_parameter", param=param
        )
    return value


def invalid_type(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_type", param=param)


def model_field(payload: dict[str, Any]) -> str:
    model = required_field(payload, "model")
    if not isinstance(model, str) or not model:
        raise invalid_type("'model' must be a non-empty string", "model")
    return model


def _messages(payload: dict[str, Any]) -> None:
    messages = required_field(payload, "messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_type("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid_type(f"messages[{i}] must be an object with a string 'role'", "messages")


def _stream(payload: dict[str, Any]) -> bool:
    stream = payload.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise invalid_type("'stream' must be a boolean", "stream")
    return stream


def parse_chat_body(raw: bytes) -> ChatCall:
    """An OpenAI `POST /v1/chat/completions` body."""
    payload = json_object(raw)
    model = model_field(payload)
    _messages(payload)
    stream = _stream(payload)
    has_options = "stream_options" in payload
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise invalid_type("'stream_options' must be an object", "stream_options")
    wants_usage = bool(options.get("include_usage")) if options else False
    return ChatCall(
        raw_body=raw,
        payload=payload,
        model=model,
        stream=stream,
        has_stream_options=has_options,
        wants_usage=wants_usage,
    )


def parse_messages_body(raw: bytes, forward_headers: Headers = ()) -> ChatCall:
    """An Anthropic `POST /v1/messages` body (max_tokens is required, as Anthropic's API
    requires it). Anthropic streams always carry usage."""
    payload = json_object(raw)
    model = model_field(payload)
    _messages(payload)
    max_tokens = required_field(payload, "max_tokens", "max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid_type("max_tokens: must be a positive integer", "max_tokens")
    return ChatCall(
        raw_body=raw,
        payload=payload,
        model=model,
        stream=_stream(payload),
        has_stream_options=False,
        wants_usage=True,
        protocol=Wire.ANTHROPIC,
        forward_headers=forward_headers,
    )


def parse_count_tokens_body(raw: bytes, forward_headers: Headers = ()) -> ChatCall:
    """An Anthropic `POST /v1/messages/count_tokens` body."""
    payload = json_object(raw)
    model = model_field(payload)
    _messages(payload)
    return ChatCall(
        raw_body=raw,
        payload=payload,
        model=model,
        stream=False,
        has_stream_options=False,
        wants_usage=False,
        protocol=Wire.ANTHROPIC,
        forward_headers=forward_headers,
    )


def parse_embeddings_body(raw: bytes) -> ChatCall:
    """An OpenAI `POST /v1/embeddings` body."""
    payload = json_object(raw)
    model = model_field(payload)
    given = required_field(payload, "input", "you must provide an input parameter")
    if not isinstance(given, str | list) or (isinstance(given, list) and not given):
        raise invalid_type("'input' must be a string or a non-empty array", "input")
    return ChatCall(
        raw_body=raw,
        payload=payload,
        model=model,
        stream=False,
        has_stream_options=False,
        wants_usage=False,
    )
