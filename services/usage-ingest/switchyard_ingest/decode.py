"""Turning bus payloads into usage events, and recognising poison messages.

A message that is not a valid event must never block the stream, so everything the
database would reject for its content (types, lengths) is caught here, before the
batch insert, and the message is dead-lettered instead.
"""

from __future__ import annotations

import math

from switchyard_common.usage import UsageEvent, decode_event

__all__ = ["PoisonMessage", "decode_usage"]


class PoisonMessage(ValueError):
    """The payload is not a usage event this ingest can store."""


# Column widths of switchyard_common.usage_store.usage_events.
_REQUIRED_STR = {
    "id": 36,
    "org": 100,
    "org_id": 36,
    "key_id": 36,
    "capability": 32,
    "model": 200,
    "provider": 100,
    "upstream_model": 200,
    "currency": 3,
}
_OPTIONAL_STR = {"error_type": 64, "client_ip": 64, "trace_id": 64}
_OPTIONAL_TEXT = ("request_body", "response_body")
_INTS = ("status", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
# Postgres INTEGER; anything beyond is a corrupt producer, not a real count.
_INT_MAX = 2**31 - 1


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def decode_usage(data: bytes) -> UsageEvent:
    """Decode and validate one message; raise PoisonMessage saying why it is unusable."""
    try:
        event = decode_event(data)
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise PoisonMessage(f"undecodable usage event: {exc}") from None
    problems: list[str] = []
    for name, width in _REQUIRED_STR.items():
        value = getattr(event, name)
        if not isinstance(value, str) or len(value) > width or (name == "id" and not value):
            problems.append(f"{name} must be a string of at most {width} characters")
    for name, width in _OPTIONAL_STR.items():
        value = getattr(event, name)
        if value is not None and (not isinstance(value, str) or len(value) > width):
            problems.append(f"{name} must be null or a string of at most {width} characters")
    for name in _OPTIONAL_TEXT:
        value = getattr(event, name)
        if value is not None and not isinstance(value, str):
            problems.append(f"{name} must be null or a string")
    for name in _INTS:
        value = getattr(event, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _INT_MAX:
            problems.append(f"{name} must be a non-negative integer")
    for name in ("ts", "cost", "latency_ms"):
        if not _is_number(getattr(event, name)):
            problems.append(f"{name} must be a finite number")
    if event.ttfb_ms is not None and not _is_number(event.ttfb_ms):
        problems.append("ttfb_ms must be null or a finite number")
    for name in ("stream", "tokens_estimated"):
        if not isinstance(getattr(event, name), bool):
            problems.append(f"{name} must be a boolean")
    if _is_number(event.ts) and not 0 < event.ts < 32503680000:  # year 3000
        problems.append("ts is out of range")
    if problems:
        raise PoisonMessage("invalid usage event: " + "; ".join(problems))
    return event
