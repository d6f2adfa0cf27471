"""serve(): real uvicorn, booted from the snapshot cache with no control plane, calling a
real HTTP upstream through the production (aiohttp) upstream client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from aiohttp import web
from switchyard_common import governance_registry
from switchyard_dataplane.server import serve
from switchyard_dataplane.settings import DataPlaneSettings
from switchyard_dataplane.snapshot_client import write_snapshot_cache

from tests.conftest import free_port

from .conftest import AUTH, SECRET, UPSTREAM_KEY, RecordingPublisher, make_snapshot, openai_completion

STREAM = [
    b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
    b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}\n\n',
    b"data: [DONE]\n\n",
]


async def _upstream(request: web.Request) -> web.StreamResponse:
    assert request.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    body = await request.json()
    if body["model"] == "slow":
        await asyncio.sleep(2)
    if body["model"] == "limited":
        return web.json_response({"error": {"message": "slow down", "type": "rate_limit"}}, status=429)
    if body.get("stream"):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in STREAM:
            await response.write(chunk)
        await response.write_eof()
        return response
    return web.json_response(openai_completion(body["model"], prompt=4, completion=2))


@pytest.fixture
async def upstream_port() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _upstream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


async def test_serve_from_cache_against_real_upstream(tmp_path, upstream_port: int) -> None:  # type: ignore[no-untyped-def]
    snap = make_snapshot(
        base_urls={"up": f"http://127.0.0.1:{upstream_port}", "dead": f"http://127.0.0.1:{free_port()}/v1"}
    )
    slow = snap.providers.add(
        id="p-slow", slug="slowup", api_format="openai", base_url=f"http://127.0.0.1:{upstream_port}/v1"
    )
    slow.api_key_encrypted = snap.providers[0].api_key_encrypted
    slow.timeout_seconds = 0.3
    snap.models.add(id="m-dead", name="dead").targets.add(provider_slug="dead", upstream_model="x")
    snap.models.add(id="m-slow", name="slow").targets.add(provider_slug="slowup", upstream_model="slow")
    snap.models.add(id="m-lim", name="limited").targets.add(provider_slug="up", upstream_model="limited")
    snap.keys[0].models[:] = []
    write_snapshot_cache(tmp_path / "snapshot.pb", snap)

    port = free_port()
    settings = DataPlaneSettings(
        dataplane_port=port,
        controlplane_grpc=f"127.0.0.1:{free_port()}",
        secret_key=SECRET,
        state_dir=tmp_path,
        snapshot_connect_timeout=0.3,
    )
    assert settings.snapshot_cache == tmp_path / "snapshot.pb"
    publisher = RecordingPublisher()
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, publisher=publisher, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(200):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert (await client.get("/readyz")).status_code == 200

            body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
            response = await client.post("/v1/chat/completions", json=body, headers=AUTH)
            assert response.status_code == 200
            assert response.json()["model"] == "gpt-up"

            async with client.stream(
                "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=AUTH
            ) as stream:
                relayed = b"".join([chunk async for chunk in stream.aiter_raw()])
            assert relayed == STREAM[0] + STREAM[2]

            dead = await client.post("/v1/chat/completions", json={**body, "model": "dead"}, headers=AUTH)
            assert dead.status_code == 502
            slow_response = await client.post(
                "/v1/chat/completions", json={**body, "model": "slow"}, headers=AUTH
            )
            assert slow_response.status_code == 504
            limited = await client.post(
                "/v1/chat/completions", json={**body, "model": "limited"}, headers=AUTH
            )
            assert limited.status_code == 429
            assert limited.json() == {"error": {"message": "slow down", "type": "rate_limit"}}
            quickstart = await client.post(
                "/v1/chat/completions", json={**body, "model": "echo"}, headers=AUTH
            )
            assert quickstart.json()["choices"][0]["message"]["content"] == "hi"

        events = publisher.events
        assert [(e.model, e.status) for e in events] == [
            ("chat", 200),
            ("chat", 200),
            ("dead", 502),
            ("slow", 504),
            ("limited", 429),
            ("echo", 200),
        ]
        assert (events[1].stream, events[1].input_tokens, events[1].output_tokens) == (True, 5, 1)
        assert orjson.loads(publisher.messages[0].data)["org"] == "acme"
        registered = (
            governance_registry.LOCAL_BREAKERS is not None,
            governance_registry.LOCAL_BUDGETS is not None,
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Embedded mode registered its in-memory breakers and budgets for the control plane
    # while serving, and withdraws them when it stops.
    assert registered == (True, True)
    assert governance_registry.LOCAL_BREAKERS is None and governance_registry.LOCAL_BUDGETS is None
