"""The built-in mock provider and the cold routes."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson

from .conftest import AUTH, Gateway


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError("the mock provider must not use the network")


async def test_mock_echoes_last_user_message(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    body = {
        "model": "echo",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "hello mock world"},
        ],
    }
    response = await gw.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "echo-1"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "hello mock world"}
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    [event] = gw.events
    assert (event.provider, event.input_tokens, event.output_tokens) == ("builtin", 7, 3)


async def test_mock_stream(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    body = {"model": "echo", "stream": True, "messages": [{"role": "user", "content": "one two three"}]}
    response = await gw.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "one two three"
    assert all(c["choices"] for c in chunks)  # usage chunk not asked for: stripped
    assert gw.events[0].output_tokens == 3

    body["stream_options"] = {"include_usage": True}
    response = await gw.client.post("/v1/chat/completions", json=body, headers=AUTH)
    last = orjson.loads([e for e in response.text.split("\n\n") if e.startswith("data: {")][-1][6:])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3


async def test_models_lists_only_allowed(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    response = await gw.client.get("/v1/models", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["chat", "echo"]
    assert body["data"][0]["object"] == "model"
    unauthorized = await gw.client.get("/v1/models")
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["type"] == "authentication_error"


async def test_health_ready_metrics_and_unknown_paths(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    assert (await gw.client.get("/healthz")).status_code == 200
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["snapshot_version"] == 1
    await gw.client.post(
        "/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user"}]}, headers=AUTH
    )
    metrics = (await gw.client.get("/metrics")).text
    assert 'switchyard_dataplane_requests_total{route="chat_completions",status="200"} 1.0' in metrics
    missing = await gw.client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_url"
    wrong_method = await gw.client.get("/v1/chat/completions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


async def test_not_ready_without_snapshot(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_no_network)
    gw.app.chat._holder.current = None
    assert (await gw.client.get("/readyz")).status_code == 503
    response = await gw.client.post("/v1/chat/completions", json={"model": "echo"}, headers=AUTH)
    assert response.status_code == 503
