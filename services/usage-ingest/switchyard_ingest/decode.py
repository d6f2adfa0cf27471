"""Turning bus payloads into usage events, and recognising poison messages.

A message that is not a valid event must never block the stream, so everything the
database would reject for its content (types, lengths) is caught here, before the
batch insert, and the message is dead-lettered instead.

This runs once per event at ingest rates of 10,000+/s: one orjson parse, one
positional dataclass construction and one pass of exact type checks. It reads events
as `switchyard_common.usage.decode_event` does (unknown fields ignored).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import orjson
from sqlalchemy import String
from switchyard_common.usage import Attempt, UsageEvent
from switchyard_common.usage_store import usage_events

__all__ = ["PoisonMessage", "decode_usage"]


class PoisonMessage(ValueError):
    """The payload is not a usage event this ingest can store."""


def _widths(*names: str) -> tuple[tuple[str, int], ...]:
    """(field, the ledger column's width) for each string field, read from the table."""
    return tuple((name, cast(String, usage_events.c[name].type).length or 0) for name in names)


_REQUIRED_STR = _widths(
    "id",
    "org",
    "org_id",
    "key_id",
    "capability",
    "model",
    "provider",
    "upstream_model",
    "currency",
    "key_name",
)
_OPTIONAL_STR = _widths("error_type", "client_ip", "trace_id", "refused_by")
_OPTIONAL_TEXT = ("request_body", "response_body")
_INTS = (
    "status",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "images",
    "pages",
    "characters",
)
# Rollups and time-series totals only ever grow (ADR 016): no negative amounts.
_NON_NEGATIVE = ("cost", "latency_ms", "audio_seconds")
_BOOLS = (
    "stream",
    "tokens_estimated",
    "unpriced",
    "client_disconnect",
    # Audit row columns (audit_store.audit_log).
    "request_truncated",
    "response_truncated",
    "response_reassembled",
)
# Postgres INTEGER; anything beyond is a corrupt producer, not a real count.
_INT_MAX = 2**31 - 1
_TS_MAX = 32503680000  # year 3000


def _is_number(value: object) -> bool:
    kind = type(value)
    return (kind is float and math.isfinite(value)) or kind is int  # type: ignore[arg-type]


_REQUIRED = object()
_FROM_FACTORY = object()
_FIELDS = dataclasses.fields(UsageEvent)
_NAMES = tuple(f.name for f in _FIELDS)
# Per field, in the dataclass's order: its default, _REQUIRED, or _FROM_FACTORY.
_DEFAULTS = tuple(
    _FROM_FACTORY
    if f.default_factory is not dataclasses.MISSING
    else _REQUIRED
    if f.default is dataclasses.MISSING
    else f.default
    for f in _FIELDS
)
_FACTORIES = tuple(
    (index, f.default_factory)
    for index, f in enumerate(_FIELDS)
    if f.default_factory is not dataclasses.MISSING
)
_ATTEMPTS = _NAMES.index("attempts")


def _parse(data: bytes) -> UsageEvent:
    """orjson's keys are not interned, so `UsageEvent(**raw)` matches ~45 keyword
    names by string comparison, and a Python loop over the fields is no cheaper; one
    `map(raw.get, ...)` in C and a positional call are. Unknown fields (from newer
    producers) are ignored."""
    raw = orjson.loads(data)
    if type(raw) is not dict:
        raise ValueError("usage event is not a JSON object")
    values = list(map(raw.get, _NAMES, _DEFAULTS))
    if _REQUIRED in values:
        raise ValueError(f"required field {_NAMES[values.index(_REQUIRED)]!r} is missing")
    for index, factory in _FACTORIES:
        if values[index] is _FROM_FACTORY:
            values[index] = factory()  # type: ignore[misc]
    attempts = values[_ATTEMPTS]
    values[_ATTEMPTS] = [Attempt(**a) for a in attempts] if attempts else []
    return UsageEvent(*values)


def _problems(event: UsageEvent) -> list[str]:
    problems: list[str] = []
    get = event.__getattribute__
    for name, width in _REQUIRED_STR:
        value: Any = get(name)
        if type(value) is not str or len(value) > width or (name == "id" and not value):
            problems.append(f"{name} must be a string of at most {width} characters")
    for name, width in _OPTIONAL_STR:
        value = get(name)
        if value is not None and (type(value) is not str or len(value) > width):
            problems.append(f"{name} must be null or a string of at most {width} characters")
    for name in _OPTIONAL_TEXT:
        value = get(name)
        if value is not None and type(value) is not str:
            problems.append(f"{name} must be null or a string")
    for name in _INTS:
        value = get(name)
        if type(value) is not int or not 0 <= value <= _INT_MAX:
            problems.append(f"{name} must be a non-negative integer")
    ts = event.ts
    if not _is_number(ts):
        problems.append("ts must be a finite number")
    elif not 0 < ts < _TS_MAX:
        problems.append("ts is out of range")
    for name in _NON_NEGATIVE:
        value = get(name)
        if not _is_number(value):
            problems.append(f"{name} must be a finite number")
        elif value < 0:
            problems.append(f"{name} must not be negative")
    if event.ttfb_ms is not None and not _is_number(event.ttfb_ms):
        problems.append("ttfb_ms must be null or a finite number")
    refusals = event.shadow_refusals
    if type(refusals) is not list or any(type(rule) is not str for rule in refusals):
        problems.append("shadow_refusals must be a list of strings")
    for name in _BOOLS:
        if type(get(name)) is not bool:
            problems.append(f"{name} must be a boolean")
    return problems


def decode_usage(data: bytes) -> UsageEvent:
    """Decode and validate one message; raise PoisonMessage saying why it is unusable."""
    try:
        event = _parse(data)
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise PoisonMessage(f"undecodable usage event: {exc}") from None
    problems = _problems(event)
    if problems:
        raise PoisonMessage("invalid usage event: " + "; ".join(problems))
    # One number type in JSON: whole floats arrive as int. The ledger's float columns
    # (and the binary COPY into them) take floats.
    if type(event.cost) is int:
        event.cost = float(event.cost)
    if type(event.latency_ms) is int:
        event.latency_ms = float(event.latency_ms)
    if type(event.audio_seconds) is int:
        event.audio_seconds = float(event.audio_seconds)
    if type(event.ttfb_ms) is int:
        event.ttfb_ms = float(event.ttfb_ms)
    if type(event.ts) is int:
        event.ts = float(event.ts)
    return event
