"""Builders for data plane tests: snapshots, an in-process app over a fake upstream, and a
publisher that records what it is given."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from switchyard_common.bus import BusMessage
from switchyard_common.proto.controlplane_pb2 import Snapshot
from switchyard_common.secrets import SecretBox, hash_api_key
from switchyard_common.usage import UsageEvent, decode_event
from switchyard_dataplane.app import DataPlaneApp, create_app
from switchyard_dataplane.image_inline import any_host
from switchyard_dataplane.index import IndexHolder, build_index
from switchyard_dataplane.upstream import HttpxUpstream

SECRET = "unit-test-secret"
KEY = "gk_unit_test_key_value"
UPSTREAM_KEY = "sk-upstream-secret"


class RecordingPublisher:
    def __init__(self) -> None:
        self.messages: list[BusMessage] = []

    def publish_nowait(self, message: BusMessage) -> None:
        self.messages.append(message)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @property
    def events(self) -> list[UsageEvent]:
        return [decode_event(m.data) for m in self.messages]


def make_snapshot(
    *,
    base_urls: dict[str, str] | None = None,
    targets: list[tuple[str, str, int]] | None = None,
    key_models: list[str] | None = None,
    key_revoked: bool = False,
    key_expires_at: int = 0,
    version: int = 1,
    formats: dict[str, str] | None = None,
    api_paths: dict[str, str] | None = None,
    extra_headers: dict[str, dict[str, str]] | None = None,
) -> Snapshot:
    """One org `acme`, providers (slug -> base URL; OpenAI-compatible unless `formats`
    says otherwise), a `mock` provider, model `chat` routed to `targets` (provider,
    upstream model, priority), model `echo` on the mock, and key KEY."""
    box = SecretBox(SECRET)
    snap = Snapshot(version=version, id=f"snap-{version}", created_at_ms=1_700_000_000_000)
    snap.organizations.add(id="org-1", name="acme")
    for slug, url in (base_urls or {"up": "http://upstream.test/v1"}).items():
        snap.providers.add(
            id=f"p-{slug}",
            slug=slug,
            api_format=(formats or {}).get(slug, "openai"),
            base_url=url,
            api_path=(api_paths or {}).get(slug, ""),
            api_key_encrypted=box.encrypt(UPSTREAM_KEY),
            extra_headers=(extra_headers or {}).get(slug, {"X-Extra": "1"}),
            timeout_seconds=5,
            connect_timeout_seconds=2,
        )
    snap.providers.add(id="p-mock", slug="builtin", api_format="mock")
    chat = snap.models.add(id="m-chat", name="chat", capability="llm")
    for provider, upstream_model, priority in targets or [("up", "gpt-up", 0)]:
        chat.targets.add(provider_slug=provider, upstream_model=upstream_model, priority=priority, weight=1)
    echo = snap.models.add(id="m-echo", name="echo", capability="llm")
    echo.targets.add(provider_slug="builtin", upstream_model="echo-1")
    secret = snap.models.add(id="m-secret", name="secret-model", capability="llm")
    secret.targets.add(provider_slug="builtin", upstream_model="echo-1")
    snap.keys.add(
        id="key-1",
        name="test",
        org_id="org-1",
        key_hash=hash_api_key(KEY),
        scopes=["llm"],
        models=key_models if key_models is not None else ["chat", "echo"],
        revoked=key_revoked,
        expires_at=key_expires_at,
    )
    snap.prices.add(model="chat", unit="input_token", per_million=2.0, currency="USD")
    snap.prices.add(model="chat", unit="output_token", per_million=10.0, currency="USD")
    return snap


Handler = Callable[[httpx.Request], Any]


@dataclass
class Gateway:
    app: DataPlaneApp
    client: httpx.AsyncClient
    publisher: RecordingPublisher
    upstream_requests: list[httpx.Request] = field(default_factory=list)

    @property
    def events(self) -> list[UsageEvent]:
        return self.publisher.events


AUTH = {"Authorization": f"Bearer {KEY}"}


def chat_body(model: str = "chat", **extra: Any) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra})


def openai_completion(model: str = "gpt-up", prompt: int = 7, completion: int = 3) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


@pytest.fixture
async def make_gateway() -> AsyncIterator[Callable[..., Gateway]]:
    clients: list[httpx.AsyncClient] = []

    def factory(
        handler: Handler, snapshot: Snapshot | None = None, *, max_body_bytes: int = 1_000_000
    ) -> Gateway:
        publisher = RecordingPublisher()
        holder = IndexHolder(build_index(snapshot or make_snapshot(), secret_key=SECRET, env={}))
        seen: list[httpx.Request] = []

        async def recording(request: httpx.Request) -> httpx.Response:
            await request.aread()
            seen.append(request)
            result = handler(request)
            if not isinstance(result, httpx.Response):
                result = await result
            return result

        app = create_app(
            holder=holder,
            upstream=HttpxUpstream(httpx.MockTransport(recording)),
            publisher=publisher,
            usage_subject_prefix="usage",
            max_body_bytes=max_body_bytes,
            image_guard=any_host,  # fake hosts (images.test) do not resolve
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 5555)), base_url="http://gw.test"
        )
        clients.append(client)
        return Gateway(app=app, client=client, publisher=publisher, upstream_requests=seen)

    yield factory
    for client in clients:
        await client.aclose()
