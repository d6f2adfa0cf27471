"""The one mapping from the Switchyard exception tree to OpenAI-shaped HTTP responses."""

from __future__ import annotations

import math

import orjson
from switchyard_common.errors import RateLimited, SwitchyardError, UpstreamStatusError

__all__ = ["ErrorResponse", "error_response"]

ErrorResponse = tuple[int, list[tuple[bytes, bytes]], bytes]

_JSON = (b"content-type", b"application/json")


def error_response(exc: SwitchyardError) -> ErrorResponse:
    """(status, headers, body) for `exc`: `{"error": {"message","type","code","param"}}`.

    An upstream's own error is passed back with its status; its body was already shaped
    by the provider adapter (kept as-is when it has an `error` object, wrapped otherwise).
    """
    headers = [_JSON]
    if isinstance(exc, UpstreamStatusError) and isinstance(exc.body, bytes):
        return exc.status, headers, exc.body
    if isinstance(exc, RateLimited):
        headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode()))
    body = orjson.dumps(
        {"error": {"message": exc.message, "type": exc.error_type, "code": exc.code, "param": exc.param}}
    )
    return exc.status, headers, body
