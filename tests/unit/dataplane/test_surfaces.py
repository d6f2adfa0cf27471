"""The inbound surfaces: every route under every prefix, x-api-key auth, errors in the
caller's protocol, and the models list in both shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from .conftest import AUTH, KEY, Gateway, chat_body, make_snapshot, openai_completion

ANTHROPIC_AUTH = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
PREFIXES = ("/v1", "/openai/v1", "/anthropic/v1")


def messages_body(model: str = "echo", **extra: Any) -> bytes:
    return orjson.dumps(
        {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}], **extra}
    )


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError("the mock provider must not use the network")


def _anthropic_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["type"] == "error", body
    assert set(body["error"]) >= {"type", "message"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_every_surface_under_every_prefix(make_gateway: Callable[..., Gateway], prefix: str) -> None:
    gw = make_gateway(_no_network)
    chat = await gw.client.post(f"{prefix}/chat/completions", content=chat_body("echo"), headers=AUTH)
    assert chat.status_code == 200 and chat.json()["object"] == "chat.completion"

    embeddings = await gw.client.post(
        f"{prefix}/embeddings", json={"model": "echo", "input": ["a b", "c"]}, headers=AUTH
    )
    assert embeddings.status_code == 200
    assert [d["index"] for d in embeddings.json()["data"]] == [0, 1]

    messages = await gw.client.post(f"{prefix}/messages", content=messages_body(), headers=ANTHROPIC_AUTH)
    assert messages.status_code == 200, messages.text
    assert messages.json()["type"] == "message"
    assert messages.json()["content"][0]["text"] == "hello there"

    counted = await gw.client.post(
        f"{prefix}/messages/count_tokens",
        json={"model": "echo", "messages": [{"role": "user", "content": "hello there"}]},
        headers=ANTHROPIC_AUTH,
    )
    assert counted.status_code == 200
    assert counted.json()["input_tokens"] > 0

    models = await gw.client.get(f"{prefix}/models", headers=AUTH)
    assert models.status_code == 200
    # count_tokens records no usage event; the three calls do.
    assert [e.model for e in gw.events] == ["echo", "echo", "echo"]


async def test_x_api_key_and_bearer_both_authenticate(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    for headers in ({"x-api-key": KEY}, AUTH):
        response = await gw.client.post("/v1/messages", content=messages_body(), headers=headers)
        assert response.status_code == 200, response.text
    chat = await gw.client.post("/v1/chat/completions", content=chat_body("echo"), headers={"x-api-key": KEY})
    assert chat.status_code == 200
    bad = await gw.client.post("/v1/messages", content=messages_body(), headers={"x-api-key": "gk_nope"})
    assert bad.status_code == 401
    assert _anthropic_error(bad)["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "headers", "snapshot_kwargs", "status", "error_type"),
    [
        (messages_body(), {}, {}, 401, "authentication_error"),
        (messages_body("secret-model"), ANTHROPIC_AUTH, {}, 403, "permission_error"),
        (messages_body("no-such-model"), ANTHROPIC_AUTH, {}, 404, "not_found_error"),
        (b"{truncated", ANTHROPIC_AUTH, {}, 400, "invalid_request_error"),
        (orjson.dumps({"model": "echo", "max_tokens": 5}), ANTHROPIC_AUTH, {}, 400, "invalid_request_error"),
        (
            orjson.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}]}),
            ANTHROPIC_AUTH,
            {},
            400,
            "invalid_request_error",
        ),
        (messages_body(stream="yes"), ANTHROPIC_AUTH, {}, 400, "invalid_request_error"),
        (messages_body(pad="x" * 300), ANTHROPIC_AUTH, {}, 413, "request_too_large"),
    ],
)
async def test_anthropic_errors_from_the_gateway(
    make_gateway: Callable[..., Gateway],
    body: bytes,
    headers: dict[str, str],
    snapshot_kwargs: dict[str, Any],
    status: int,
    error_type: str,
) -> None:
    gw = make_gateway(
        _no_network, make_snapshot(key_models=["chat", "echo"], **snapshot_kwargs), max_body_bytes=250
    )
    response = await gw.client.post("/v1/messages", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert _anthropic_error(response)["type"] == error_type


@pytest.mark.parametrize(
    ("fail", "status", "error_type"),
    [
        (httpx.ConnectError("refused"), 502, "api_error"),
        (httpx.ReadTimeout("slow"), 504, "timeout_error"),
    ],
)
async def test_anthropic_errors_for_unreachable_and_slow_upstreams(
    make_gateway: Callable[..., Gateway], fail: Exception, status: int, error_type: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise fail

    gw = make_gateway(handler, make_snapshot(formats={"up": "anthropic"}))
    response = await gw.client.post("/v1/messages", content=messages_body("chat"), headers=ANTHROPIC_AUTH)
    assert response.status_code == status
    assert _anthropic_error(response)["type"] == error_type
    [event] = gw.events
    assert event.status == status


async def test_anthropic_upstream_error_passes_through_with_529(make_gateway: Callable[..., Gateway]) -> None:
    upstream = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    gw = make_gateway(
        lambda r: httpx.Response(529, content=upstream), make_snapshot(formats={"up": "anthropic"})
    )
    response = await gw.client.post("/v1/messages", content=messages_body("chat"), headers=ANTHROPIC_AUTH)
    assert response.status_code == 529
    assert response.content == upstream


async def test_anthropic_upstream_error_without_shape_is_wrapped(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(500, content=b"boom"), make_snapshot(formats={"up": "anthropic"})
    )
    response = await gw.client.post("/v1/messages", content=messages_body("chat"), headers=ANTHROPIC_AUTH)
    assert response.status_code == 500
    assert _anthropic_error(response) == {"type": "api_error", "message": "boom"}


async def test_cold_route_errors_follow_the_caller(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    missing = await gw.client.get("/anthropic/v1/nothing")
    assert missing.status_code == 404 and _anthropic_error(missing)["type"] == "not_found_error"
    wrong_method = await gw.client.get("/v1/messages")
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "error"
    unauthorized = await gw.client.get("/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert (
        unauthorized.status_code == 401 and _anthropic_error(unauthorized)["type"] == "authentication_error"
    )
    openai_missing = await gw.client.get("/openai/v1/nothing")
    assert openai_missing.json()["error"]["code"] == "unknown_url"


async def test_models_in_the_anthropic_shape(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    for path, headers in (
        ("/v1/models", ANTHROPIC_AUTH),
        ("/v1/models", {"x-api-key": KEY}),
        ("/anthropic/v1/models", AUTH),
    ):
        body = (await gw.client.get(path, headers=headers)).json()
        assert body["has_more"] is False
        assert (body["first_id"], body["last_id"]) == ("chat", "echo")
        assert body["data"][0] == {
            "type": "model",
            "id": "chat",
            "display_name": "chat",
            "created_at": "2023-11-14T22:13:20Z",
        }
    openai = (await gw.client.get("/openai/v1/models", headers=AUTH)).json()
    assert openai["object"] == "list" and openai["data"][0]["object"] == "model"


async def test_retrieve_one_model(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    one = await gw.client.get("/v1/models/echo", headers=AUTH)
    assert one.json()["id"] == "echo" and one.json()["object"] == "model"
    anthropic = await gw.client.get("/anthropic/v1/models/echo", headers=AUTH)
    assert anthropic.json()["type"] == "model"
    hidden = await gw.client.get("/anthropic/v1/models/secret-model", headers=AUTH)
    assert hidden.status_code == 403 and _anthropic_error(hidden)["type"] == "permission_error"


async def test_embeddings_pass_through_openai_upstreams(make_gateway: Callable[..., Gateway]) -> None:
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "model": "gpt-up",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    gw = make_gateway(lambda r: httpx.Response(200, json=answer))
    body = b'{"input": "some text", "model": "chat"}'
    response = await gw.client.post("/v1/embeddings", content=body, headers=AUTH)
    assert response.json() == answer
    [upstream] = gw.upstream_requests
    assert str(upstream.url) == "http://upstream.test/v1/embeddings"
    assert upstream.content == b'{"input": "some text", "model": "gpt-up"}'
    [event] = gw.events
    assert (event.input_tokens, event.tokens_estimated, event.cost) == (4, False, pytest.approx(8e-6))


async def test_embeddings_refused_by_providers_without_them(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network, make_snapshot(formats={"up": "anthropic"}))
    response = await gw.client.post("/v1/embeddings", json={"model": "chat", "input": "x"}, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_operation" and "cannot serve embeddings" in error["message"]
    assert gw.upstream_requests == []


async def test_count_tokens_forwarded_to_anthropic(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, json={"input_tokens": 42}), make_snapshot(formats={"up": "anthropic"})
    )
    body = b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}'
    headers = {**ANTHROPIC_AUTH, "anthropic-beta": "token-counting-2024-11-01"}
    response = await gw.client.post("/v1/messages/count_tokens", content=body, headers=headers)
    assert response.json() == {"input_tokens": 42}
    [upstream] = gw.upstream_requests
    assert str(upstream.url) == "http://upstream.test/v1/messages/count_tokens"
    assert upstream.content == b'{"model": "gpt-up", "messages": [{"role": "user", "content": "hi"}]}'
    assert upstream.headers["anthropic-beta"] == "token-counting-2024-11-01"
    assert upstream.headers["x-api-key"] == "sk-upstream-secret"
    assert gw.events == []


async def test_count_tokens_counted_locally_for_other_upstreams(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=openai_completion()))
    short = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    long = {"model": "chat", "messages": [{"role": "user", "content": "hi " * 200}]}
    a = (await gw.client.post("/v1/messages/count_tokens", json=short, headers=ANTHROPIC_AUTH)).json()
    b = (await gw.client.post("/v1/messages/count_tokens", json=long, headers=ANTHROPIC_AUTH)).json()
    assert 0 < a["input_tokens"] < b["input_tokens"]
    assert gw.upstream_requests == []
