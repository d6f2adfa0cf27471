"""OpenAI wire details shared by the codec and its stream: finish reasons, usage, errors."""

from __future__ import annotations

from typing import Any

import orjson

from .checks import wire_int
from .ir import ErrorInfo, ErrorKind, StopReason, TokenUsage

__all__ = [
    "error_status",
    "error_type",
    "finish_reason",
    "parse_openai_error",
    "stop_reason",
    "stream_error",
    "usage_from_openai",
    "usage_to_openai",
]

_FINISH_TO_STOP = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "content_filter": StopReason.CONTENT_FILTER,
    "insufficient_system_resource": StopReason.ERROR,  # DeepSeek
}
_STOP_TO_FINISH = {
    StopReason.END_TURN: "stop",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.PAUSE: "stop",
    StopReason.ERROR: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.CONTENT_FILTER: "content_filter",
}


def stop_reason(finish: Any) -> StopReason | None:
    if finish is None:
        return None
    return _FINISH_TO_STOP.get(str(finish), StopReason.END_TURN)


def finish_reason(stop: StopReason | None) -> str:
    return "stop" if stop is None else _STOP_TO_FINISH[stop]


def usage_from_openai(usage: dict[str, Any]) -> TokenUsage:
    """OpenAI counts cached prompt tokens inside `prompt_tokens` (as the IR does); DeepSeek
    reports them as `prompt_cache_hit_tokens` instead of `prompt_tokens_details`."""
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    cached = wire_int(prompt.get("cached_tokens")) if isinstance(prompt, dict) else 0
    return TokenUsage(
        input_tokens=wire_int(usage.get("prompt_tokens")),
        output_tokens=wire_int(usage.get("completion_tokens")),
        cached_tokens=cached or wire_int(usage.get("prompt_cache_hit_tokens")),
        reasoning_tokens=wire_int(completion.get("reasoning_tokens")) if isinstance(completion, dict) else 0,
    )


def usage_to_openai(usage: TokenUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


_STATUS_KIND = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    413: ErrorKind.REQUEST_TOO_LARGE,
    429: ErrorKind.RATE_LIMIT,
    503: ErrorKind.OVERLOADED,
    504: ErrorKind.TIMEOUT,
    529: ErrorKind.OVERLOADED,
}
_KIND_WIRE: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error"),
    ErrorKind.AUTHENTICATION: (401, "authentication_error"),
    ErrorKind.PERMISSION: (403, "permission_error"),
    ErrorKind.NOT_FOUND: (404, "not_found_error"),
    ErrorKind.REQUEST_TOO_LARGE: (413, "request_too_large"),
    ErrorKind.RATE_LIMIT: (429, "rate_limit_error"),
    ErrorKind.OVERLOADED: (503, "service_unavailable"),
    ErrorKind.TIMEOUT: (504, "timeout_error"),
    ErrorKind.API_ERROR: (500, "server_error"),
}
_TYPE_KIND = {wire_type: kind for kind, (_, wire_type) in _KIND_WIRE.items()}


def error_status(kind: ErrorKind) -> int:
    return _KIND_WIRE[kind][0]


def error_type(kind: ErrorKind) -> str:
    return _KIND_WIRE[kind][1]


def parse_openai_error(status: int, body: bytes) -> ErrorInfo:
    """OpenAI's `{"error": {message, type, code}}`; the status decides the kind, since
    OpenAI reuses `invalid_request_error` for 401 and 404 answers."""
    kind = _STATUS_KIND.get(status) or (ErrorKind.API_ERROR if status >= 500 else ErrorKind.INVALID_REQUEST)
    message, code = "", None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        code = str(err["code"]) if err.get("code") is not None else None
    elif isinstance(err, str):  # some compatible servers send {"error": "text"}
        message = err
    if not message:
        message = body.decode("utf-8", "replace").strip()[:500] or f"upstream answered {status}"
    return ErrorInfo(kind, message, code)


def stream_error(data: dict[str, Any]) -> ErrorInfo:
    """An `{"error": ...}` object sent inside a stream, which carries no status."""
    err = data.get("error")
    if not isinstance(err, dict):
        return ErrorInfo(ErrorKind.API_ERROR, str(err))
    kind = _TYPE_KIND.get(str(err.get("type")), ErrorKind.API_ERROR)
    code = err.get("code")
    return ErrorInfo(kind, str(err.get("message") or "upstream error"), str(code) if code else None)
