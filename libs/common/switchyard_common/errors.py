"""The Switchyard exception tree. Each transport maps it to its wire format in one place.

SwitchyardError
├── RequestError            the caller sent something we refuse (4xx)
│   ├── InvalidRequest          400  malformed JSON, missing or wrong fields
│   ├── AuthenticationError     401  missing, unknown, revoked or expired key
│   ├── PermissionDenied        403  key may not use this model
│   ├── NotFound                404  unknown model or route
│   ├── PayloadTooLarge         413  body over the configured limit
│   └── RateLimited             429  a limit was hit (carries retry_after)
│       └── QuotaExceeded       429  a spend budget is used up (insufficient_quota)
├── UpstreamError           a provider failed us (5xx unless passed through)
│   ├── UpstreamUnreachable     502  connect failure, reset, bad response
│   ├── UpstreamTimeout         504  no answer in time
│   └── UpstreamStatusError     the provider's own 4xx/5xx, passed back
├── ServiceUnavailable      503  no usable target / not ready
└── ConfigError             invalid configuration (config as code, snapshot)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConfigIssue",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "QuotaExceeded",
    "RateLimited",
    "RequestError",
    "ServiceUnavailable",
    "SwitchyardError",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]


class SwitchyardError(Exception):
    status: int = 500
    error_type: str = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param


class RequestError(SwitchyardError):
    status = 400
    error_type = "invalid_request_error"


class InvalidRequest(RequestError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationError(RequestError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(RequestError):
    status = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class NotFound(RequestError):
    status = 404
    error_type = "not_found_error"
    code = "model_not_found"


class PayloadTooLarge(RequestError):
    status = 413
    error_type = "request_too_large"
    code = "payload_too_large"


class RateLimited(RequestError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message, code=code)
        # Seconds; <= 0 means "not by waiting" (no Retry-After is sent).
        self.retry_after = retry_after
        # Extra response headers (x-ratelimit-*).
        self.headers = headers


class QuotaExceeded(RateLimited):
    """A spend budget is used up (OpenAI's 429 `insufficient_quota`)."""

    error_type = "insufficient_quota"
    code = "insufficient_quota"


class ServiceUnavailable(SwitchyardError):
    status = 503
    error_type = "service_unavailable"
    code = "no_available_target"


class UpstreamError(SwitchyardError):
    status = 502
    error_type = "upstream_error"


class UpstreamUnreachable(UpstreamError):
    status = 502
    code = "upstream_unreachable"


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "timeout_error"
    code = "upstream_timeout"


class UpstreamStatusError(UpstreamError):
    """The provider answered with an error status; its body is passed back."""

    def __init__(
        self, status: int, body: Any, message: str, *, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message, code="upstream_error")
        self.status = status
        self.body = body
        # Upstream response headers the caller must see too (Retry-After and the like).
        self.headers = headers


class ConfigIssue:
    """One problem in a config document: where (file, path) and what."""

    __slots__ = ("file", "message", "path")

    def __init__(self, path: str, message: str, file: str | None = None) -> None:
        self.file = file
        self.path = path
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path or '<root>'}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "path": self.path, "message": self.message}


class ConfigError(SwitchyardError):
    status = 422
    error_type = "config_error"

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("; ".join(str(i) for i in issues))
        self.issues = issues
