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
    outcome: str  # "ok" | "error" | "timeout" | "unreachable"
    ms: float


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
    tokens_estimated: bool = False
    cost: float = 0.0
    currency: str = "USD"
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    client_ip: str | None = None
    trace_id: str | None = None
    request_body: str | None = None
    response_body: str | None = None

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
