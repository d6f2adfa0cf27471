"""Builders for admission tests: a gateway app with a given Governor, limiters over the
real Redis with a unique prefix, and throwaway Redis servers that tests may kill."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from switchyard_common.proto.controlplane_pb2 import Snapshot
from switchyard_dataplane.admission.governor import Governor
from switchyard_dataplane.app import DataPlaneApp, create_app
from switchyard_dataplane.image_inline import any_host
from switchyard_dataplane.index import IndexHolder, build_index
from switchyard_dataplane.redis_link import RedisLink
from switchyard_dataplane.upstream import HttpxUpstream

from tests.conftest import REDIS_URL, free_port, unique_name
from tests.unit.dataplane.conftest import SECRET, RecordingPublisher, openai_completion

__all__ = [
    "GovernedGateway",
    "RedisServer",
    "governed_gateway",
    "ok_upstream",
    "redis_link",
    "throwaway_redis",
]


def ok_upstream(prompt: int = 7, completion: int = 3) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=openai_completion(prompt=prompt, completion=completion))

    return handler


@dataclass
class GovernedGateway:
    app: DataPlaneApp
    client: httpx.AsyncClient
    publisher: RecordingPublisher
    governor: Governor
    holder: IndexHolder

    @property
    def events(self) -> list[Any]:
        return self.publisher.events

    def swap(self, snapshot: Snapshot) -> None:
        self.holder.swap(build_index(snapshot, secret_key=SECRET, env={}))


@contextlib.asynccontextmanager
async def governed_gateway(
    snapshot: Snapshot,
    governor: Governor | None = None,
    *,
    upstream: Any = None,
    client_ip: str = "203.0.113.9",
    breakers: Any = None,
) -> AsyncIterator[GovernedGateway]:
    publisher = RecordingPublisher()
    holder = IndexHolder(build_index(snapshot, secret_key=SECRET, env={}))
    governor = governor or Governor()
    handler = upstream or ok_upstream()

    async def transport(request: httpx.Request) -> httpx.Response:
        await request.aread()
        result = handler(request)
        if not isinstance(result, httpx.Response):
            result = await result
        return result

    app = create_app(
        holder=holder,
        upstream=HttpxUpstream(httpx.MockTransport(transport)),
        publisher=publisher,
        metrics=governor.metrics,
        image_guard=any_host,
        governor=governor,
        breakers=breakers,
    )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(client_ip, 5555)), base_url="http://gw.test"
    )
    try:
        yield GovernedGateway(app, client, publisher, governor, holder)
    finally:
        await client.aclose()
        await governor.drain()


@contextlib.asynccontextmanager
async def redis_link(url: str = REDIS_URL, **kwargs: Any) -> AsyncIterator[RedisLink]:
    """A link with a unique key prefix; its keys are deleted afterwards. Its deadline is
    longer than production's: these tests are about counting, on a shared busy machine."""
    kwargs.setdefault("timeout", 2.0)
    link = RedisLink(url, unique_name("sytest") + ":", **kwargs)
    try:
        yield link
    finally:
        with contextlib.suppress(Exception):
            keys = [k async for k in link.client.scan_iter(match=link.prefix + "*", count=1000)]
            if keys:
                await link.client.delete(*keys)
        await link.close()


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes] | None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def throwaway_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own on a spare port (tests may kill it)."""
    server = RedisServer(free_port(), None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def json_of(response: httpx.Response) -> Any:
    return orjson.loads(response.content)
