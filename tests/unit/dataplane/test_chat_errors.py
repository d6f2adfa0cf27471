"""Every error the chat route answers: status, OpenAI error shape, and the usage event."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest
from switchyard_dataplane.providers.base import ChatCall

from .conftest import AUTH, KEY, Gateway, chat_body, make_snapshot, openai_completion


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=openai_completion())


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("headers", "snapshot_kwargs", "code"),
    [
        ({}, {}, "invalid_api_key"),
        ({"Authorization": "Bearer gk_nope"}, {}, "invalid_api_key"),
        (AUTH, {"key_revoked": True}, "revoked_api_key"),
        (AUTH, {"key_expires_at": 1}, "expired_api_key"),
    ],
)
async def test_401_without_usage_event(
    make_gateway: Callable[..., Gateway],
    headers: dict[str, str],
    snapshot_kwargs: dict[str, object],
    code: str,
) -> None:
    gw = make_gateway(_ok, make_snapshot(**snapshot_kwargs))  # type: ignore[arg-type]
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=headers)
    assert response.status_code == 401
    assert _error(response)["code"] == code
    assert gw.events == []
    metrics = (await gw.client.get("/metrics")).text
    assert "switchyard_dataplane_unauthenticated_total 1.0" in metrics


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        (chat_body("secret-model"), 403, "permission_error"),
        (chat_body("no-such-model"), 404, "not_found_error"),
        (b"{not json", 400, "invalid_request_error"),
        (b"[1, 2]", 400, "invalid_request_error"),
        (orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), 400, "invalid_request_error"),
        (orjson.dumps({"model": "chat"}), 400, "invalid_request_error"),
        (orjson.dumps({"model": 3, "messages": []}), 400, "invalid_request_error"),
        (chat_body(stream="yes"), 400, "invalid_request_error"),
    ],
)
async def test_request_errors_emit_one_event(
    make_gateway: Callable[..., Gateway], body: bytes, status: int, error_type: str
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post("/v1/chat/completions", content=body, headers=AUTH)
    assert response.status_code == status
    assert _error(response)["type"] == error_type
    assert gw.upstream_requests == []
    [event] = gw.events
    assert (event.status, event.error_type, event.org, event.key_id) == (status, error_type, "acme", "key-1")


async def test_413_from_content_length(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_ok, max_body_bytes=100)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(pad="x" * 200), headers=AUTH)
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"
    [event] = gw.events
    assert event.status == 413


async def test_413_counts_streamed_body_bytes(make_gateway: Callable[..., Gateway]) -> None:
    """No Content-Length (chunked upload): the limit is enforced while reading."""
    gw = make_gateway(_ok, max_body_bytes=100)
    sent: list[dict[str, object]] = []
    parts = [chat_body()[:60], b" " * 60, b"}"]

    async def receive() -> dict[str, object]:
        part = parts.pop(0)
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"authorization", f"Bearer {KEY}".encode())],
        "client": ("127.0.0.1", 1),
    }
    await gw.app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert [e.status for e in gw.events] == [413]


async def test_502_when_upstream_unreachable(make_gateway: Callable[..., Gateway]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gw = make_gateway(refuse)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 502
    assert _error(response)["code"] == "upstream_unreachable"
    [event] = gw.events
    assert (event.status, event.provider, [a.outcome for a in event.attempts]) == (502, "up", ["unreachable"])


async def test_504_when_upstream_times_out(make_gateway: Callable[..., Gateway]) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    gw = make_gateway(slow)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 504
    assert _error(response)["type"] == "timeout_error"
    [event] = gw.events
    assert (event.status, [a.outcome for a in event.attempts]) == (504, ["timeout"])


async def test_upstream_error_object_is_passed_as_is(make_gateway: Callable[..., Gateway]) -> None:
    upstream_body = (
        b'{"error": {"message": "bad temperature", "type": "invalid_request_error", "code": null}}'
    )
    gw = make_gateway(lambda r: httpx.Response(400, content=upstream_body))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 400
    assert response.content == upstream_body
    [event] = gw.events
    assert (event.status, event.error_type, event.provider) == (400, "upstream_error", "up")


async def test_upstream_error_without_error_object_is_wrapped(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(503, content=b"<html>overloaded</html>"))
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 503
    error = _error(response)
    assert error["message"] == "<html>overloaded</html>"
    assert error["type"] == "upstream_error"
    assert gw.events[0].status == 503


def test_chat_call_is_plain_data() -> None:
    # Guards the adapter interface: a ChatCall carries the caller's exact bytes.
    call = ChatCall(b"{}", {}, "m", False, False, False)
    assert call.raw_body == b"{}"


async def test_unexpected_failure_is_an_openai_500_with_event(make_gateway: Callable[..., Gateway]) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug")

    gw = make_gateway(broken)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 500
    assert _error(response)["type"] == "api_error"
    assert [(e.status, e.error_type) for e in gw.events] == [(500, "internal_error")]
