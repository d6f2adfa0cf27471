import uuid

import pytest
from switchyard_common.ids import uuid7
from switchyard_common.secrets import SecretBox, SecretDecryptError, generate_api_key, hash_api_key
from switchyard_common.usage import Attempt, UsageEvent, decode_event, encode_event


def test_api_keys_are_long_random_and_hashed() -> None:
    first, second = generate_api_key(), generate_api_key()
    assert first.startswith("gk_") and len(first) >= 35 and first != second
    assert hash_api_key(first) == hash_api_key(first) != hash_api_key(second)
    assert len(hash_api_key(first)) == 64


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox("one")
    token = box.encrypt("sk-upstream")
    assert "sk-upstream" not in token
    assert box.decrypt(token) == "sk-upstream"
    with pytest.raises(SecretDecryptError):
        SecretBox("two").decrypt(token)


def test_uuid7_is_versioned_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.bytes[:6] for i in ids] == sorted(i.bytes[:6] for i in ids)


def test_usage_event_round_trip_ignores_unknown_fields() -> None:
    event = UsageEvent(
        id="e1",
        ts=1.5,
        org="acme",
        org_id="o",
        key_id="k",
        capability="llm",
        model="m",
        provider="p",
        upstream_model="u",
        status=200,
        input_tokens=3,
        attempts=[Attempt(provider="p", model="u", outcome="ok", ms=1.0)],
    )
    data = encode_event(event).replace(b'{"id"', b'{"future_field":1,"id"')
    assert decode_event(data) == event


def test_encoded_event_matches_the_documented_fields() -> None:
    import orjson

    event = UsageEvent(
        id="x", ts=1.5, org="acme", org_id="o", key_id="k", capability="llm", model="m", provider="p",
        upstream_model="u", status=200, attempts=[Attempt("p", "u", "ok", 1.0)], ttfb_ms=0.5,
    )  # fmt: skip
    assert orjson.loads(encode_event(event)) == event.as_dict()
