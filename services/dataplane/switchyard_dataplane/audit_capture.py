"""What the data plane keeps of a call for the audit log, per the org's audit policy.

`metadata` keeps the redacted request headers (the rest of the metadata is the usage
event itself); `full` also keeps the request body and the answer the caller received
(streams as the raw event text, reassembled by usage-ingest), each cut at the org's
`audit_max_body_bytes` while it is captured, so memory stays bounded whatever the
answer's size. Redaction happens here, before anything leaves the data plane.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from switchyard_common.audit import headers_from_scope, parse_json_path, redact_body, truncate
from switchyard_common.audit_streams import reassemble_stream
from switchyard_common.usage import UsageEvent

__all__ = ["AuditCapture", "AuditPolicy", "audit_policy"]


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    level: str  # "metadata" | "full"
    max_body_bytes: int
    redact_paths: tuple[tuple[str | int, ...], ...] = field(default=())


def audit_policy(level: str, max_body_bytes: int, redact_paths: Iterable[str]) -> AuditPolicy | None:
    """The policy of an organization, built once per snapshot; None when audit is off.
    Invalid paths raise ValueError (the snapshot is then refused with that message)."""
    if level == "off":
        return None
    return AuditPolicy(
        level=level if level in ("metadata", "full") else "metadata",
        max_body_bytes=max_body_bytes if max_body_bytes > 0 else 65536,
        redact_paths=tuple(parse_json_path(path) for path in redact_paths),
    )


class AuditCapture:
    """Collects one call's audit data while the call runs."""

    __slots__ = ("_headers", "_policy", "_request", "_request_truncated", "_response", "_response_truncated")

    def __init__(self, policy: AuditPolicy, headers: Sequence[tuple[bytes, bytes]]) -> None:
        self._policy = policy
        # Kept as the scope has them: decoded and redacted after the answer, in fill().
        self._headers = headers
        self._request: bytes | None = None
        self._request_truncated = False
        self._response = bytearray()
        self._response_truncated = False

    @property
    def full(self) -> bool:
        return self._policy.level == "full"

    def request(self, body: bytes) -> None:
        if self.full:
            self._request, self._request_truncated = truncate(body, self._policy.max_body_bytes)

    def response(self, data: bytes) -> None:
        """Append what was sent to the caller (a whole body, or one stream chunk)."""
        if not self.full or self._response_truncated:
            return
        room = self._policy.max_body_bytes - len(self._response)
        if len(data) > room:
            cut, _ = truncate(data, room)
            self._response += cut
            self._response_truncated = True
        else:
            self._response += data

    def fill(self, event: UsageEvent) -> None:
        """Put the captured data on the call's usage event (redacted)."""
        policy = self._policy
        event.audit_level = policy.level
        event.request_headers = headers_from_scope(self._headers)
        if not self.full:
            return
        if self._request is not None:
            # A truncated JSON body no longer parses: only secret patterns get redacted.
            event.request_body = redact_body(self._request, policy.redact_paths)
            event.request_truncated = self._request_truncated
        if self._response:
            text = self._response.decode("utf-8", "replace")
            if event.stream and policy.redact_paths:
                # JSON paths name fields of the whole answer, not of stream events: put the
                # answer together here so that nothing redactable leaves the data plane.
                whole = reassemble_stream(text)
                if whole is not None:
                    text, event.response_reassembled = whole, True
            event.response_body = redact_body(text, policy.redact_paths)
            event.response_truncated = self._response_truncated
