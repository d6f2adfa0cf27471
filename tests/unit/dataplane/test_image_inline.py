"""Images given by URL reach Gemini upstreams inline: the data plane downloads them
(bounded) and a download failure is the caller's 400 in its own protocol."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from switchyard_common.errors import InvalidRequest
from switchyard_dataplane import image_inline
from switchyard_dataplane.image_inline import ImageFetcher, public_hosts_only
from switchyard_dataplane.protocols.ir import ChatRequest, ImagePart, Message
from switchyard_dataplane.upstream import HttpxUpstream

from .conftest import AUTH, KEY, Gateway, make_snapshot, openai_completion
from .wire import gemini_response

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
CAT = "http://images.test/cat.png"
ANTHROPIC_CALLER = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def _openai_body(*urls: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "what is this?"}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {"model": "chat", "messages": [{"role": "user", "content": content}]}


def _anthropic_body(url: str) -> dict[str, Any]:
    return {
        "model": "chat",
        "max_tokens": 50,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": url}},
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    }


def _handler(images: dict[str, httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    """Serves GETs from `images` (404 otherwise) and answers every POST as Gemini."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return images.get(str(request.url)) or httpx.Response(404, text="no such image")
        return httpx.Response(200, json=gemini_response())

    return handle


def _png(content: bytes = PNG, content_type: str = "image/png") -> httpx.Response:
    return httpx.Response(200, content=content, headers={"content-type": content_type})


def _gemini_parts(gw: Gateway) -> list[dict[str, Any]]:
    [post] = [r for r in gw.upstream_requests if r.method == "POST"]
    return [part for content in orjson.loads(post.content)["contents"] for part in content["parts"]]


def _gets(gw: Gateway) -> list[str]:
    return [str(r.url) for r in gw.upstream_requests if r.method == "GET"]


async def test_url_image_is_downloaded_and_inlined(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_handler({CAT: _png()}), make_snapshot(formats={"up": "gemini"}))
    inline = "data:image/jpeg;base64," + base64.b64encode(b"jpeg").decode()
    body = _openai_body(CAT, inline, "gs://bucket/dog.png")
    response = await gw.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    parts = _gemini_parts(gw)
    assert {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}} in parts
    # Already inline, or Google's own URIs: sent as they were, nothing fetched for them.
    assert {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(b"jpeg").decode()}} in parts
    assert {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/dog.png"}} in parts
    assert not any("fileData" in p and p["fileData"]["fileUri"] == CAT for p in parts)
    assert _gets(gw) == [CAT]
    [get] = [r for r in gw.upstream_requests if r.method == "GET"]
    # The provider's credentials never go to an image host.
    assert "x-goog-api-key" not in get.headers and "authorization" not in get.headers


async def test_redirects_are_followed(make_gateway: Callable[..., Gateway]) -> None:
    moved = httpx.Response(302, headers={"location": "/real/cat.png"})
    images = {CAT: moved, "http://images.test/real/cat.png": _png(content_type="image/png; q=1")}
    gw = make_gateway(_handler(images), make_snapshot(formats={"up": "gemini"}))
    response = await gw.client.post("/v1/chat/completions", json=_openai_body(CAT), headers=AUTH)
    assert response.status_code == 200, response.text
    assert _gets(gw) == [CAT, "http://images.test/real/cat.png"]
    inlined = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}
    assert inlined in _gemini_parts(gw)


async def test_anthropic_caller_gets_400_when_the_image_cannot_be_fetched(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(_handler({}), make_snapshot(formats={"up": "gemini"}))
    response = await gw.client.post("/v1/messages", json=_anthropic_body(CAT), headers=ANTHROPIC_CALLER)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"] == f"could not fetch image URL {CAT}: the server answered HTTP 404"
    assert [r.method for r in gw.upstream_requests] == ["GET"]  # Gemini was never called
    [event] = gw.events
    assert (event.status, event.error_type) == (400, "invalid_request_error")


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (_png(content_type="text/html"), "the content type text/html is not an image"),
        (httpx.Response(200, content=PNG), "the content type (none) is not an image"),
        (httpx.Response(301, headers={"location": "ftp://images.test/cat.png"}), "only http and https"),
        (httpx.Response(302), "HTTP 302 without a Location"),
        (_png(b"x" * (image_inline.MAX_IMAGE_BYTES + 1)), "the call's images exceed 20 MiB"),
    ],
)
async def test_openai_caller_gets_400_for_unusable_images(
    make_gateway: Callable[..., Gateway], image: httpx.Response, reason: str
) -> None:
    gw = make_gateway(_handler({CAT: image}), make_snapshot(formats={"up": "gemini"}))
    response = await gw.client.post("/v1/chat/completions", json=_openai_body(CAT), headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(f"could not fetch image URL {CAT}: ")
    assert reason in error["message"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_image_url",
        "messages",
    )
    assert all(r.method == "GET" for r in gw.upstream_requests)


async def test_redirect_loops_are_cut(make_gateway: Callable[..., Gateway]) -> None:
    loop = httpx.Response(307, headers={"location": CAT})
    gw = make_gateway(_handler({CAT: loop}), make_snapshot(formats={"up": "gemini"}))
    response = await gw.client.post("/v1/chat/completions", json=_openai_body(CAT), headers=AUTH)
    assert response.status_code == 400
    assert "more than 3 redirects" in response.json()["error"]["message"]
    assert len(_gets(gw)) == image_inline.MAX_REDIRECTS + 1


async def test_slow_image_host_is_given_up(
    make_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_inline, "FETCH_TIMEOUT_SECONDS", 0.05)

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            await asyncio.sleep(5)
        return httpx.Response(200, json=gemini_response())

    gw = make_gateway(handle, make_snapshot(formats={"up": "gemini"}))
    response = await gw.client.post("/v1/chat/completions", json=_openai_body(CAT), headers=AUTH)
    assert response.status_code == 400
    assert "no complete answer within 0.05 s" in response.json()["error"]["message"]


async def test_failover_between_gemini_targets_downloads_once(make_gateway: Callable[..., Gateway]) -> None:
    posts: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return _png()
        posts.append(request.url.host)
        if request.url.host == "a.test":
            busy = {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
            return httpx.Response(503, json=busy)
        return httpx.Response(200, json=gemini_response())

    snapshot = make_snapshot(
        base_urls={"a": "http://a.test", "b": "http://b.test"},
        formats={"a": "gemini", "b": "gemini"},
        targets=[("a", "gemini-a", 0), ("b", "gemini-b", 1)],
    )
    gw = make_gateway(handle, snapshot)
    response = await gw.client.post("/v1/chat/completions", json=_openai_body(CAT, CAT), headers=AUTH)
    assert response.status_code == 200, response.text
    assert posts == ["a.test", "b.test"]
    assert _gets(gw) == [CAT]


async def test_other_upstreams_get_the_url_untouched(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(lambda r: httpx.Response(200, json=openai_completion()))
    response = await gw.client.post("/v1/messages", json=_anthropic_body(CAT), headers=ANTHROPIC_CALLER)
    assert response.status_code == 200, response.text
    [post] = gw.upstream_requests  # nothing downloaded
    content = orjson.loads(post.content)["messages"][0]["content"]
    assert {"type": "image_url", "image_url": {"url": CAT}} in content


async def test_files_api_uris_are_left_to_gemini(make_gateway: Callable[..., Gateway]) -> None:
    uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123"
    gw = make_gateway(_handler({}), make_snapshot(formats={"up": "gemini"}))
    body = _openai_body(uri)
    response = await gw.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert _gets(gw) == []
    assert any(p.get("fileData", {}).get("fileUri") == uri for p in _gemini_parts(gw))


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "100.64.0.1", "[::1]", "localhost"],
)
async def test_private_hosts_are_refused_by_default(host: str) -> None:
    with pytest.raises(ValueError, match="not a public address"):
        await public_hosts_only(host)


async def test_public_literal_addresses_pass() -> None:
    await public_hosts_only("93.184.216.34")
    await public_hosts_only("[2606:2800:220:1:248:1893:25c8:1946]")


async def test_default_guard_refuses_a_metadata_url_before_any_request() -> None:
    requests: list[httpx.Request] = []

    def never(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=b"x", headers={"content-type": "image/png"})

    fetcher = ImageFetcher(HttpxUpstream(httpx.MockTransport(never)))
    request = ChatRequest(
        model="m",
        messages=[Message("user", [ImagePart(url="http://169.254.169.254/latest/meta-data/x.png")])],
    )
    with pytest.raises(InvalidRequest, match="not a public address"):
        await fetcher.inline(request)
    assert requests == []
