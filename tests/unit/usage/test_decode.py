"""Poison-message detection in the ingest."""

from __future__ import annotations

import orjson
import pytest
from switchyard_common.usage import encode_event
from switchyard_ingest.decode import PoisonMessage, decode_usage

from .test_usage_store import make_event


def test_valid_event_round_trips() -> None:
    event = make_event(1)
    assert decode_usage(encode_event(event)) == event


def test_unknown_fields_are_ignored() -> None:
    raw = orjson.loads(encode_event(make_event(1)))
    raw["added_by_a_newer_producer"] = {"x": 1}
    assert decode_usage(orjson.dumps(raw)).id == make_event(1).id


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"id": "x"}',  # required fields missing
        b"\xff\xfe",
    ],
)
def test_undecodable_payloads_are_poison(payload: bytes) -> None:
    with pytest.raises(PoisonMessage):
        decode_usage(payload)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", "x" * 37),
        ("org", 5),
        ("status", "200"),
        ("status", True),
        ("input_tokens", -1),
        ("output_tokens", 2**40),
        ("cost", "free"),
        ("ts", None),
        ("latency_ms", None),
        ("model", "m" * 201),
        ("stream", "yes"),
        ("currency", "EURO"),
        ("attempts", [{"provider": "p"}]),
    ],
)
def test_invalid_field_values_are_poison(field: str, value: object) -> None:
    raw = orjson.loads(encode_event(make_event(1)))
    raw[field] = value
    with pytest.raises(PoisonMessage):
        decode_usage(orjson.dumps(raw))


def test_non_finite_numbers_are_poison() -> None:
    # Not JSON, but Python's json module (and some producers) write it.
    data = encode_event(make_event(1)).replace(b'"latency_ms":100.0', b'"latency_ms":NaN')
    assert b"NaN" in data
    with pytest.raises(PoisonMessage):
        decode_usage(data)
