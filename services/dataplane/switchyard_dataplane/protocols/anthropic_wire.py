"""Anthropic wire details shared by the codec and its stream: stop reasons, usage, errors."""

from __future__ import annotations

from typing import Any

import orjson

from .checks import wire_int
from .ir import ErrorInfo, ErrorKind, StopReason, TokenUsage

__all__ = [
    "error_body",
    "error_info",
    "error_status",
    "merge_usage",
    "parse_anthropic_error",
    "stop_reason",
    "stop_reason_wire",
    "usage_from_anthropic",
    "usage_to_anthropic",
]

_STOP = {
    "end_turn": StopReason.END_TURN,
    "max_tokens": StopReason.MAX_TOKENS,
    "model_context_window_exceeded": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "tool_use": StopReason.TOOL_USE,
    "pause_turn": StopReason.PAUSE,
    "refusal": StopReason.CONTENT_FILTER,
}
_WIRE_STOP = {
    StopReason.END_TURN: "end_turn",
    StopReason.MAX_TOKENS: "max_tokens",
    StopReason.STOP_SEQUENCE: "stop_sequence",
    StopReason.TOOL_USE: "tool_use",
    StopReason.PAUSE: "pause_turn",
    StopReason.CONTENT_FILTER: "refusal",
    StopReason.ERROR: "end_turn",
}
# Anthropic's documented error types with their status codes.
_KIND_WIRE: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error"),
    ErrorKind.AUTHENTICATION: (401, "authentication_error"),
    ErrorKind.PERMISSION: (403, "permission_error"),
    ErrorKind.NOT_FOUND: (404, "not_found_error"),
    ErrorKind.REQUEST_TOO_LARGE: (413, "request_too_large"),
    ErrorKind.RATE_LIMIT: (429, "rate_limit_error"),
    ErrorKind.API_ERROR: (500, "api_error"),
    ErrorKind.TIMEOUT: (504, "timeout_error"),
    ErrorKind.OVERLOADED: (529, "overloaded_error"),
}
_TYPE_KIND = {wire: kind for kind, (_, wire) in _KIND_WIRE.items()} | {"billing_error": ErrorKind.PERMISSION}
_STATUS_KIND = {status: kind for kind, (status, _) in _KIND_WIRE.items()} | {
    402: ErrorKind.PERMISSION,
    408: ErrorKind.TIMEOUT,
    503: ErrorKind.OVERLOADED,
}


def stop_reason(value: Any) -> StopReason | None:
    if value is None:
        return None
    return _STOP.get(str(value), StopReason.END_TURN)


def stop_reason_wire(stop: StopReason | None) -> str:
    return "end_turn" if stop is None else _WIRE_STOP[stop]


def usage_from_anthropic(usage: dict[str, Any]) -> TokenUsage:
    """Anthropic's `input_tokens` leaves out cache reads and writes; the IR counts them."""
    read = wire_int(usage.get("cache_read_input_tokens"))
    written = wire_int(usage.get("cache_creation_input_tokens"))
    return TokenUsage(
        input_tokens=wire_int(usage.get("input_tokens")) + read + written,
        output_tokens=wire_int(usage.get("output_tokens")),
        cached_tokens=read,
        cache_creation_tokens=written,
    )


def merge_usage(seen: dict[str, Any], usage: dict[str, Any]) -> TokenUsage:
    """The stream's usage so far once `usage` (an event's) is added to the fields `seen`
    before it, which it updates. Figures are cumulative: a `message_delta` repeats the
    input counts (newer API versions) or carries output_tokens alone, so a field it
    leaves out or sends as null keeps its earlier value."""
    seen.update({k: v for k, v in usage.items() if v is not None})
    return usage_from_anthropic(seen)


def usage_to_anthropic(usage: TokenUsage | None) -> dict[str, Any]:
    usage = usage or TokenUsage()
    return {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens),
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    }


def error_status(kind: ErrorKind) -> int:
    return _KIND_WIRE[kind][0]


def error_body(error: ErrorInfo) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _KIND_WIRE[error.kind][1], "message": error.message}}


def error_info(err: Any, status: int | None = None) -> ErrorInfo:
    """The `error` object of an error body or stream event; its `type` decides the kind."""
    fallback = _STATUS_KIND.get(status or 0) or (
        ErrorKind.API_ERROR if status is None or status >= 500 else ErrorKind.INVALID_REQUEST
    )
    if not isinstance(err, dict):
        return ErrorInfo(fallback, str(err) if err else f"upstream answered {status}")
    kind = _TYPE_KIND.get(str(err.get("type")), fallback)
    return ErrorInfo(kind, str(err.get("message") or f"upstream answered {status}"))


def parse_anthropic_error(status: int, body: bytes) -> ErrorInfo:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and "error" in data:
        return error_info(data["error"], status)
    text = body.decode("utf-8", "replace").strip()[:500]
    return error_info({"message": text} if text else None, status)
