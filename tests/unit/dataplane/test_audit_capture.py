"""Audit capture on the data plane: levels, redaction before leaving, bounded size."""

from __future__ import annotations

import orjson
import pytest
from switchyard_common.audit import REDACTED, decompress
from switchyard_common.audit_store import audit_row
from switchyard_common.usage import UsageEvent
from switchyard_dataplane.audit_capture import AuditCapture, audit_policy

HEADERS = [(b"authorization", b"Bearer gk_" + b"k" * 40), (b"user-agent", b"OpenAI/Python")]


def _event(stream: bool = False) -> UsageEvent:
    return UsageEvent(
        id="e", ts=0.0, org="o", org_id="oid", key_id="k", capability="llm", model="m",
        provider="p", upstream_model="u", status=200, stream=stream,
    )  # fmt: skip


def test_off_means_no_capture() -> None:
    assert audit_policy("off", 100, []) is None


def test_metadata_keeps_redacted_headers_but_no_bodies() -> None:
    policy = audit_policy("metadata", 1000, [])
    assert policy is not None
    capture = AuditCapture(policy, HEADERS)
    capture.request(b'{"messages": []}')
    capture.response(b'{"id": "x"}')
    event = _event()
    capture.fill(event)
    assert event.audit_level == "metadata"
    assert event.request_headers == {"authorization": REDACTED, "user-agent": "OpenAI/Python"}
    assert event.request_body is None and event.response_body is None


def test_full_keeps_bodies_with_paths_and_secrets_redacted() -> None:
    policy = audit_policy("full", 10_000, ["$.messages[*].content", "$.choices[*].message.content"])
    assert policy is not None
    capture = AuditCapture(policy, HEADERS)
    capture.request(
        orjson.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "ssn 123"}], "x": "gk_" + "z" * 40}
        )
    )
    capture.response(orjson.dumps({"choices": [{"message": {"content": "your ssn"}}], "id": "r"}))
    event = _event()
    capture.fill(event)
    request = orjson.loads(event.request_body or "")
    assert (
        request["messages"][0]["content"] == REDACTED and request["x"] == REDACTED and request["model"] == "m"
    )
    response = orjson.loads(event.response_body or "")
    assert response["choices"][0]["message"]["content"] == REDACTED and response["id"] == "r"
    assert not event.request_truncated and not event.response_truncated


def test_stream_capture_is_bounded_and_marked_truncated() -> None:
    policy = audit_policy("full", 64, [])
    assert policy is not None
    capture = AuditCapture(policy, [])
    for _ in range(100):
        capture.response(b'data: {"choices":[{"delta":{"content":"hello"}}]}\n\n')
    event = _event(stream=True)
    capture.fill(event)
    assert event.response_body is not None and len(event.response_body.encode()) <= 64
    assert event.response_truncated is True


def test_streams_are_reassembled_on_the_data_plane_when_paths_must_be_redacted() -> None:
    policy = audit_policy("full", 10_000, ["$.choices[*].message.content"])
    assert policy is not None
    capture = AuditCapture(policy, [])
    capture.response(
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"secret"}}]}\n\ndata: [DONE]\n\n'
    )
    event = _event(stream=True)
    capture.fill(event)
    assert "secret" not in (event.response_body or "")
    assert orjson.loads(event.response_body or "")["choices"][0]["message"]["content"] == REDACTED
    # The stored row says the answer is a reassembled stream, though ingest had nothing
    # left to reassemble.
    assert event.response_reassembled is True
    row = audit_row(event)
    assert row is not None and row["response_reassembled"] is True
    assert orjson.loads(decompress(row["response_body"]) or "")["id"] == "c"


def test_bad_paths_are_refused_when_the_policy_is_built() -> None:
    with pytest.raises(ValueError):
        audit_policy("full", 100, ["messages.content"])
