"""The usage event: the contract between the data plane and usage ingest (design.md section 5).

One event per call, JSON on subject `<prefix>.<org>`, with `Nats-Msg-Id` = event id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Attempt", "UsageEvent", "decode_event", "encode_event"]


@dataclass(slots=True)
class Attempt:
    provider: str
    model: str
    # "ok" | "error" | "timeout" | "unreachable" | "breaker_open" | "rate_limited" | "over_quota"
    outcome: str
    ms: float
    status: int | None = None  # the upstream's HTTP status, when it answered


@dataclass(slots=True)
class UsageEvent:
    id: str
    ts: float  # Unix seconds (float) when the call was received
    org: str  # organization name
    org_id: str
    key_id: str
    capability: str
    model: str  # public model name the client asked for
    provider: str  # provider slug that answered (or was tried last)
    upstream_model: str
    status: int  # HTTP status returned to the client
    error_type: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    tokens_estimated: bool = False
    # Units of the non-token capabilities (design.md section 5).
    images: int = 0
    pages: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    cost: float = 0.0
    currency: str = "USD"
    # The model had no price: cost 0.0 is not a real price (the org admitted it flagged).
    unpriced: bool = False
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    client_ip: str | None = None
    trace_id: str | None = None
    key_name: str = ""
    # The caller went away before the answer was complete.
    client_disconnect: bool = False
    # The limit, budget or scope rule that refused the call ("key.rpm", "org.budget.day", ...).
    refused_by: str | None = None
    # Rules in shadow mode that would have refused the call, which was admitted.
    shadow_refusals: list[str] = field(default_factory=list)
    # Audit (per the org's policy): "metadata" or "full"; None = not audited. The bodies
    # (full only) are redacted and truncated by the data plane.
    audit_level: str | None = None
    request_headers: dict[str, str] | None = None
    request_body: str | None = None
    response_body: str | None = None
    request_truncated: bool = False
    response_truncated: bool = False
    # The streamed answer in response_body is already reassembled into one document (the
    # data plane does it when JSON paths must be redacted); ingest must not try again.
    response_reassembled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name for f in dataclasses.fields(UsageEvent)}


def encode_event(event: UsageEvent) -> bytes:
    # orjson serializes dataclasses natively, several times faster than asdict() first:
    # this runs once per call on the data plane.
    return orjson.dumps(event)


def decode_event(data: bytes) -> UsageEvent:
    """Parse an event; unknown fields (from newer producers) are ignored."""
    raw = orjson.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("usage event is not a JSON object")
    values = {k: v for k, v in raw.items() if k in _FIELDS}
    values["attempts"] = [Attempt(**a) for a in values.get("attempts") or []]
    return UsageEvent(**values)
