"""Each upstream adapter's URLs and headers, as configured and as sent."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest
from switchyard_dataplane.providers import ADAPTERS
from switchyard_dataplane.providers.base import ApiFormat, Operation

from .conftest import AUTH, KEY, Gateway, chat_body, make_snapshot, openai_completion
from .wire import anthropic_message, gemini_response, gemini_stream

ANTHROPIC_CALLER = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def _messages(model: str = "chat", **extra: object) -> bytes:
    return orjson.dumps(
        {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}], **extra}
    )


@pytest.mark.parametrize(
    ("api_format", "base_url", "api_path", "chat", "embeddings"),
    [
        (
            "openai",
            "https://api.openai.com/v1",
            "",
            "https://api.openai.com/v1/chat/completions",
            "https://api.openai.com/v1/embeddings",
        ),
        (
            "openai",
            "http://vllm:8000",
            "",
            "http://vllm:8000/v1/chat/completions",
            "http://vllm:8000/v1/embeddings",
        ),
        (
            "openai",
            "https://dashscope.aliyuncs.com",
            "/compatible-mode/v1/chat/completions",
            "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
            "https://dashscope.aliyuncs.com/compatible-mode/v1/embeddings",
        ),
        (
            "azure",
            "https://res.openai.azure.com",
            "",
            "https://res.openai.azure.com/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21",
            "https://res.openai.azure.com/openai/deployments/{deployment}/embeddings?api-version=2024-10-21",
        ),
        (
            "azure",
            "https://res.openai.azure.com",
            "?api-version=2025-04-01-preview",
            "https://res.openai.azure.com/openai/deployments/{deployment}/chat/completions?api-version=2025-04-01-preview",
            "https://res.openai.azure.com/openai/deployments/{deployment}/embeddings?api-version=2025-04-01-preview",
        ),
        ("anthropic", "https://api.anthropic.com", "", "https://api.anthropic.com/v1/messages", None),
        (
            "gemini",
            "https://generativelanguage.googleapis.com",
            "",
            "https://generativelanguage.googleapis.com",
            None,
        ),
    ],
)
def test_configured_urls(
    api_format: str, base_url: str, api_path: str, chat: str, embeddings: str | None
) -> None:
    urls = ADAPTERS[api_format].upstream_urls(base_url, api_path)
    assert urls[Operation.CHAT] == chat
    assert urls.get(Operation.EMBEDDINGS) == embeddings


def test_every_configurable_format_has_an_adapter() -> None:
    from switchyard_common.config_schema import API_FORMATS

    assert set(API_FORMATS) == set(ADAPTERS) == {f.value for f in ApiFormat}


async def test_azure_deployment_url_and_api_key(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, json=openai_completion()),
        make_snapshot(
            base_urls={"up": "https://res.openai.azure.com"},
            formats={"up": "azure"},
            api_paths={"up": "?api-version=2025-04-01-preview"},
            targets=[("up", "my deployment", 0)],
        ),
    )
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 200
    [upstream] = gw.upstream_requests
    assert str(upstream.url) == (
        "https://res.openai.azure.com/openai/deployments/my%20deployment/chat/completions"
        "?api-version=2025-04-01-preview"
    )
    assert upstream.headers["api-key"] == "sk-upstream-secret"
    assert "authorization" not in upstream.headers
    assert orjson.loads(upstream.content)["model"] == "my deployment"


async def test_anthropic_headers_defaults_and_caller_forwarding(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(
        lambda r: httpx.Response(200, json=anthropic_message()),
        make_snapshot(
            base_urls={"up": "https://api.anthropic.com"},
            formats={"up": "anthropic"},
            extra_headers={"up": {"anthropic-beta": "prompt-caching-2024-07-31"}},
        ),
    )
    # A caller without anthropic-version gets the default.
    assert (
        await gw.client.post("/v1/messages", content=_messages(), headers={"x-api-key": KEY})
    ).status_code == 200
    caller = {
        "x-api-key": KEY,
        "anthropic-version": "2024-01-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14,prompt-caching-2024-07-31",
    }
    assert (await gw.client.post("/v1/messages", content=_messages(), headers=caller)).status_code == 200
    first, second = gw.upstream_requests
    assert str(first.url) == "https://api.anthropic.com/v1/messages"
    assert first.headers["x-api-key"] == "sk-upstream-secret"
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "authorization" not in first.headers
    assert second.headers["anthropic-version"] == "2024-01-01"
    assert second.headers["anthropic-beta"] == "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
    # The gateway key never reaches the upstream.
    assert KEY not in str(second.headers)


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_key_header_and_paths(make_gateway: Callable[..., Gateway], stream: bool) -> None:
    def gemini(request: httpx.Request) -> httpx.Response:
        if stream:
            return httpx.Response(
                200, content=b"".join(gemini_stream()), headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(200, json=gemini_response())

    gw = make_gateway(
        gemini,
        make_snapshot(
            base_urls={"up": "https://generativelanguage.googleapis.com"},
            formats={"up": "gemini"},
            targets=[("up", "gemini-2.5-flash", 0)],
        ),
    )
    response = await gw.client.post("/v1/chat/completions", content=chat_body(stream=stream), headers=AUTH)
    assert response.status_code == 200, response.text
    [upstream] = gw.upstream_requests
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    assert (
        str(upstream.url)
        == f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:{method}"
    )
    assert upstream.headers["x-goog-api-key"] == "sk-upstream-secret"
    assert "authorization" not in upstream.headers
    assert "contents" in orjson.loads(upstream.content)


async def test_azure_serves_anthropic_callers_through_translation(
    make_gateway: Callable[..., Gateway],
) -> None:
    from .wire import openai_stream

    gw = make_gateway(
        lambda r: httpx.Response(
            200, content=b"".join(openai_stream()), headers={"content-type": "text/event-stream"}
        ),
        make_snapshot(
            base_urls={"up": "https://res.openai.azure.com"},
            formats={"up": "azure"},
            targets=[("up", "dep-1", 0)],
        ),
    )
    response = await gw.client.post("/v1/messages", content=_messages(stream=True), headers=ANTHROPIC_CALLER)
    assert response.status_code == 200
    assert "event: message_stop" in response.text
    [upstream] = gw.upstream_requests
    assert str(upstream.url) == (
        "https://res.openai.azure.com/openai/deployments/dep-1/chat/completions?api-version=2024-10-21"
    )
    assert upstream.headers["api-key"] == "sk-upstream-secret"
    assert orjson.loads(upstream.content)["stream_options"] == {"include_usage": True}
    assert gw.events[0].output_tokens == 2


# Every header name an adapter may carry a credential in, to check nothing else leaks.
_CREDENTIAL_HEADERS = {"authorization", "api-key", "x-api-key", "x-goog-api-key", "x-custom-key"}
_FORMAT_DEFAULTS = {
    "openai": ("authorization", "Bearer sk-up"),
    "azure": ("api-key", "sk-up"),
    "anthropic": ("x-api-key", "sk-up"),
    "gemini": ("x-goog-api-key", "sk-up"),
}


@pytest.mark.parametrize("api_format", list(_FORMAT_DEFAULTS))
@pytest.mark.parametrize(
    ("auth_header", "expected"),
    [
        ("", None),  # None: the format's default
        ("bearer", {"authorization": "Bearer sk-up"}),
        ("none", {}),
        ("X-Custom-Key", {"x-custom-key": "sk-up"}),
        ("Authorization", {"authorization": "sk-up"}),  # a raw key in Authorization
    ],
)
def test_auth_header_styles_for_every_format(
    api_format: str, auth_header: str, expected: dict[str, str] | None
) -> None:
    headers = dict(ADAPTERS[api_format].static_headers("sk-up", {"X-Extra": "1"}, auth_header))
    if expected is None:
        expected = dict([_FORMAT_DEFAULTS[api_format]])
    assert {k: v for k, v in headers.items() if k in _CREDENTIAL_HEADERS} == expected
    assert headers["content-type"] == "application/json" and headers["x-extra"] == "1"
    # Without a credential no style sends one.
    bare = dict(ADAPTERS[api_format].static_headers("", {}, auth_header))
    assert not set(bare) & _CREDENTIAL_HEADERS


def test_auth_header_keeps_the_anthropic_version_and_yields_to_extra_headers() -> None:
    anthropic = dict(ADAPTERS["anthropic"].static_headers("sk-up", {}, "none"))
    assert anthropic["anthropic-version"] == "2023-06-01" and "x-api-key" not in anthropic
    # An explicit extra header of the same name is the operator's last word.
    overridden = dict(ADAPTERS["openai"].static_headers("sk-up", {"X-Api-Key": "fixed"}, "X-Api-Key"))
    assert overridden["x-api-key"] == "fixed"


def test_the_mock_sends_no_credential_whatever_the_style() -> None:
    assert dict(ADAPTERS["mock"].static_headers("sk-up", {}, "X-Api-Key")) == {
        "content-type": "application/json"
    }


async def test_custom_auth_header_reaches_the_upstream(make_gateway: Callable[..., Gateway]) -> None:
    snapshot = make_snapshot()
    snapshot.providers[0].auth_header = "X-Api-Key"
    gw = make_gateway(lambda r: httpx.Response(200, json=openai_completion()), snapshot)
    response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    assert response.status_code == 200
    [upstream] = gw.upstream_requests
    assert upstream.headers["x-api-key"] == "sk-upstream-secret"
    assert "authorization" not in upstream.headers
