"""The one mapping from the Switchyard exception tree to HTTP error responses, per
caller protocol: OpenAI `{"error": {"message","type","code","param"}}` and Anthropic
`{"type":"error","error":{"type","message"}}`, with the statuses those APIs use."""

from __future__ import annotations

import math
from collections.abc import Callable

import orjson
from switchyard_common.errors import RateLimited, SwitchyardError, UpstreamStatusError

__all__ = ["ErrorResponse", "anthropic_error_type", "error_response"]

ErrorResponse = tuple[int, list[tuple[bytes, bytes]], bytes]

_JSON = (b"content-type", b"application/json")

# Anthropic's documented error types by status.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def _openai_body(exc: SwitchyardError) -> bytes:
    return orjson.dumps(
        {"error": {"message": exc.message, "type": exc.error_type, "code": exc.code, "param": exc.param}}
    )


def _anthropic_body(exc: SwitchyardError) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": anthropic_error_type(exc.status), "message": exc.message}}
    )


_BODIES: dict[str, Callable[[SwitchyardError], bytes]] = {
    "openai": _openai_body,
    "anthropic": _anthropic_body,
}


def error_response(exc: SwitchyardError, protocol: str = "openai") -> ErrorResponse:
    """(status, headers, body) for `exc` in the caller's `protocol`.

    An upstream's own error is passed back with its status; its body was already shaped
    for the caller (kept as-is for a caller of the upstream's protocol, translated
    otherwise).
    """
    headers = [_JSON]
    if isinstance(exc, UpstreamStatusError) and isinstance(exc.body, bytes):
        headers.extend((n.encode("latin-1"), v.encode("latin-1", "replace")) for n, v in exc.headers)
        return exc.status, headers, exc.body
    if isinstance(exc, RateLimited):
        if exc.retry_after > 0:
            headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode()))
        headers.extend((n.encode("latin-1"), v.encode("latin-1")) for n, v in exc.headers)
    return exc.status, headers, _BODIES.get(protocol, _openai_body)(exc)
