"""Audit data on the usage events of real calls through the data plane, per org policy."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
from switchyard_common.audit import REDACTED

from .conftest import AUTH, KEY, Gateway, chat_body, make_snapshot, openai_completion


def _audited(level: str, **policy: object) -> object:
    snap = make_snapshot()
    org = snap.organizations[0]
    org.policy.audit = level
    for name, value in policy.items():
        field = getattr(org.policy, name)
        if isinstance(value, list):
            field.extend(value)
        else:
            setattr(org.policy, name, value)
    return snap


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=openai_completion(prompt=5, completion=2))


async def test_default_policy_keeps_metadata_headers_only(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_answer, make_snapshot())
    assert (
        await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    ).status_code == 200
    [event] = gw.events
    assert event.audit_level == "metadata"
    assert event.request_headers is not None and event.request_headers["authorization"] == REDACTED
    assert KEY not in orjson.dumps(event.request_headers).decode()
    assert event.request_body is None and event.response_body is None


async def test_audit_off_keeps_nothing(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_answer, _audited("off"))
    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    [event] = gw.events
    assert event.audit_level is None and event.request_headers is None


async def test_full_audit_keeps_redacted_bodies_and_error_answers(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(_answer, _audited("full", audit_redact_paths=["$.messages[*].content"]))
    assert (
        await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    ).status_code == 200
    refused = await gw.client.post("/v1/chat/completions", content=chat_body("nope"), headers=AUTH)
    assert refused.status_code == 404
    ok, error = gw.events
    request = orjson.loads(ok.request_body or "")
    assert request["model"] == "chat" and all(m["content"] == REDACTED for m in request["messages"])
    assert orjson.loads(ok.response_body or "")["usage"]["prompt_tokens"] == 5
    assert error.audit_level == "full" and "nope" in (error.response_body or "")


async def test_the_callers_trace_id_is_recorded_when_this_data_plane_does_not_trace(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(_answer, make_snapshot())
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {**AUTH, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=headers)
    await gw.client.post(
        "/v1/chat/completions",
        content=chat_body(),
        headers={**AUTH, "traceparent": "00-" + "0" * 32 + "-1-01"},
    )
    await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert [event.trace_id for event in gw.events] == [trace_id, None, None]
