"""Gemini `GenerateContentResponse`, usage, finish reasons and error bodies <-> IR.

Only `candidates[0]` is read: the gateway never asks for more than one candidate when
translating. Gemini reports STOP for a natural end and for a stop sequence alike, and
STOP (not a tool-specific reason) when the answer holds function calls; a response with
`functionCall` parts is TOOL_USE in the IR.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from switchyard_common.errors import UpstreamUnreachable

from .checks import wire_int
from .gemini_parts import parts_from_gemini, parts_to_gemini
from .ir import ChatResponse, ErrorInfo, ErrorKind, ImagePart, Part, StopReason, TokenUsage, ToolCallPart

__all__ = [
    "build_gemini_error",
    "build_gemini_response",
    "finish_reason_to_gemini",
    "gemini_error_status",
    "new_response_id",
    "parse_gemini_error",
    "parse_gemini_response",
    "stop_reason_from_gemini",
    "usage_from_gemini",
    "usage_to_gemini",
]

_FINISH_REASONS = {
    "STOP": StopReason.END_TURN,
    "MAX_TOKENS": StopReason.MAX_TOKENS,
    "SAFETY": StopReason.CONTENT_FILTER,
    "RECITATION": StopReason.CONTENT_FILTER,
    "BLOCKLIST": StopReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": StopReason.CONTENT_FILTER,
    "SPII": StopReason.CONTENT_FILTER,
    "IMAGE_SAFETY": StopReason.CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": StopReason.CONTENT_FILTER,
    "LANGUAGE": StopReason.ERROR,
    "MALFORMED_FUNCTION_CALL": StopReason.ERROR,
    "UNEXPECTED_TOOL_CALL": StopReason.ERROR,
    "TOO_MANY_TOOL_CALLS": StopReason.ERROR,
    "OTHER": StopReason.ERROR,
}
_FINISH_OUT = {
    StopReason.END_TURN: "STOP",
    StopReason.STOP_SEQUENCE: "STOP",
    StopReason.TOOL_USE: "STOP",
    StopReason.PAUSE: "STOP",
    StopReason.MAX_TOKENS: "MAX_TOKENS",
    StopReason.CONTENT_FILTER: "SAFETY",
    StopReason.ERROR: "OTHER",
}
_STATUS_KINDS = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "OUT_OF_RANGE": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "INTERNAL": ErrorKind.API_ERROR,
    "UNKNOWN": ErrorKind.API_ERROR,
    "DATA_LOSS": ErrorKind.API_ERROR,
    "CANCELLED": ErrorKind.API_ERROR,
}
_HTTP_KINDS = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    413: ErrorKind.REQUEST_TOO_LARGE,
    429: ErrorKind.RATE_LIMIT,
    503: ErrorKind.OVERLOADED,
    504: ErrorKind.TIMEOUT,
}
# Gemini (Google API) HTTP statuses: INVALID_ARGUMENT 400, UNAUTHENTICATED 401,
# PERMISSION_DENIED 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, INTERNAL 500,
# UNAVAILABLE 503, DEADLINE_EXCEEDED 504.
_KIND_HTTP = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.API_ERROR: 500,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.TIMEOUT: 504,
}
_KIND_STATUS = {
    ErrorKind.INVALID_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.AUTHENTICATION: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.REQUEST_TOO_LARGE: "INVALID_ARGUMENT",
    ErrorKind.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    ErrorKind.OVERLOADED: "UNAVAILABLE",
    ErrorKind.TIMEOUT: "DEADLINE_EXCEEDED",
    ErrorKind.API_ERROR: "INTERNAL",
}


def new_response_id() -> str:
    return uuid.uuid4().hex


def usage_from_gemini(meta: Any) -> TokenUsage | None:
    if not isinstance(meta, dict):
        return None
    thoughts = wire_int(meta.get("thoughtsTokenCount"))
    return TokenUsage(
        # Tool-use prompt tokens (server-side tools' results) are billed as input.
        input_tokens=wire_int(meta.get("promptTokenCount")) + wire_int(meta.get("toolUsePromptTokenCount")),
        # candidatesTokenCount excludes thoughts; the IR's output includes reasoning.
        output_tokens=wire_int(meta.get("candidatesTokenCount")) + thoughts,
        cached_tokens=wire_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def usage_to_gemini(usage: TokenUsage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    return out


def stop_reason_from_gemini(finish: Any, *, has_tool_calls: bool) -> StopReason | None:
    if not isinstance(finish, str) or finish == "FINISH_REASON_UNSPECIFIED":
        return None
    reason = _FINISH_REASONS.get(finish, StopReason.ERROR)
    if reason is StopReason.END_TURN and has_tool_calls:
        return StopReason.TOOL_USE
    return reason


def finish_reason_to_gemini(reason: StopReason | None) -> str | None:
    return None if reason is None else _FINISH_OUT.get(reason, "STOP")


def _first_candidate(payload: dict[str, Any]) -> dict[str, Any] | None:
    candidates = payload.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return None


def parse_gemini_response(payload: dict[str, Any], *, new_id: Callable[[], str]) -> ChatResponse:
    """An upstream answer -> IR. Upstream output is trusted loosely: odd shapes give an
    empty answer rather than an exception, because the caller did nothing wrong."""
    if not isinstance(payload, dict):
        raise UpstreamUnreachable("upstream returned a malformed response")
    response_id = payload.get("responseId")
    model = payload.get("modelVersion")
    candidate = _first_candidate(payload)
    parts: list[Part] = []
    finish: Any = None
    if candidate is not None:
        content = candidate.get("content")
        raw_parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(raw_parts, list):
            # Model-generated images have no place in the IR's answer parts.
            parts = [
                p
                for p in parts_from_gemini(raw_parts, "candidates[0].content", new_id=new_id, lenient=True)
                if not isinstance(p, ImagePart)
            ]
        finish = candidate.get("finishReason")
    has_calls = any(isinstance(p, ToolCallPart) for p in parts)
    stop = stop_reason_from_gemini(finish, has_tool_calls=has_calls)
    feedback = payload.get("promptFeedback")
    if candidate is None and isinstance(feedback, dict) and feedback.get("blockReason"):
        stop = StopReason.CONTENT_FILTER
    return ChatResponse(
        id=response_id if isinstance(response_id, str) and response_id else new_response_id(),
        model=model if isinstance(model, str) else "",
        parts=parts,
        stop_reason=stop,
        usage=usage_from_gemini(payload.get("usageMetadata")),
    )


def build_gemini_response(response: ChatResponse, model: str) -> dict[str, Any]:
    parts = parts_to_gemini(response.parts, strict=False)
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    finish = finish_reason_to_gemini(response.stop_reason)
    if finish is not None:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    body: dict[str, Any] = {"candidates": [candidate]}
    if response.usage is not None:
        body["usageMetadata"] = usage_to_gemini(response.usage)
    body["modelVersion"] = model
    body["responseId"] = response.id
    return body


# --- errors --------------------------------------------------------------------------


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    # Streaming calls that fail before the first event answer with a one-element list.
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return data["error"]
    return None


def parse_gemini_error(status: int, body: bytes) -> ErrorInfo:
    error = _error_object(body)
    if error is None:
        text = body.decode("utf-8", "replace").strip()[:500]
        return ErrorInfo(kind=_HTTP_KINDS.get(status, ErrorKind.API_ERROR), message=text or f"HTTP {status}")
    grpc_status = error.get("status") if isinstance(error.get("status"), str) else None
    kind = _STATUS_KINDS.get(grpc_status or "") or _HTTP_KINDS.get(status, ErrorKind.API_ERROR)
    if status == 413:
        kind = ErrorKind.REQUEST_TOO_LARGE
    details = error.get("details")
    if isinstance(details, list) and any(
        isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details
    ):
        # Gemini answers a bad API key with 400 INVALID_ARGUMENT; callers expect a 401.
        kind = ErrorKind.AUTHENTICATION
    message = error.get("message")
    return ErrorInfo(
        kind=kind,
        message=message if isinstance(message, str) and message else f"HTTP {status}",
        code=grpc_status,
    )


def gemini_error_status(kind: ErrorKind) -> int:
    return _KIND_HTTP[kind]


def build_gemini_error(status: int, error: ErrorInfo) -> dict[str, Any]:
    return {"error": {"code": status, "message": error.message, "status": _KIND_STATUS[error.kind]}}
