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
        ("cache_write_tokens", -3),
        ("images", 1.5),
        ("pages", "2"),
        ("characters", None),
        ("audio_seconds", "long"),
        ("audio_seconds", -1.0),
        ("cost", -0.01),
        ("unpriced", "no"),
        ("client_disconnect", 1),
        ("key_name", "k" * 201),
        ("refused_by", "r" * 65),
        ("shadow_refusals", "key.rpm"),
        ("shadow_refusals", [1]),
        ("response_truncated", "no"),
        ("response_reassembled", 1),
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


def test_new_unit_fields_are_kept() -> None:
    event = make_event(
        1,
        cache_write_tokens=3,
        images=2,
        pages=4,
        audio_seconds=12.5,
        characters=90,
        unpriced=True,
        key_name="svc",
        client_disconnect=True,
        refused_by="key.rpm",
        shadow_refusals=["org.tpm"],
    )
    assert decode_usage(encode_event(event)) == event
