"""Validation of an OpenAI chat-completions request body (pure)."""

from __future__ import annotations

import orjson
from switchyard_common.errors import InvalidRequest

from .providers.base import ChatCall

__all__ = ["parse_chat_body"]


def parse_chat_body(raw: bytes) -> ChatCall:
    """Parse and check the fields the gateway relies on; everything else is the upstream's."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    model = payload.get("model")
    if model is None:
        raise InvalidRequest(
            "you must provide a model parameter", code="missing_required_parameter", param="model"
        )
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", code="invalid_type", param="model")
    messages = payload.get("messages")
    if messages is None:
        raise InvalidRequest(
            "you must provide a messages parameter", code="missing_required_parameter", param="messages"
        )
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", code="invalid_type", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"messages[{i}] must be an object with a string 'role'", code="invalid_type", param="messages"
            )
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", code="invalid_type", param="stream")
    has_options = "stream_options" in payload
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest(
            "'stream_options' must be an object", code="invalid_type", param="stream_options"
        )
    wants_usage = bool(options.get("include_usage")) if options else False
    return ChatCall(
        raw_body=raw,
        payload=payload,
        model=model,
        stream=stream,
        has_stream_options=has_options,
        wants_usage=wants_usage,
    )
