"""How the data plane reaches upstreams: one small interface, two implementations.

- `HttpxUpstream`: httpx over any `httpx.AsyncBaseTransport` — in production the
  aiohttp-pooled `AiohttpTransport` (upstream_aiohttp.py), in tests `httpx.MockTransport`.
- `local_response`: wraps an answer an adapter produced in-process (the mock provider).

Failures are raised as the exception tree's UpstreamTimeout / UpstreamUnreachable, so
the handler classifies them the same way whatever the implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

import httpx
from switchyard_common.errors import UpstreamTimeout, UpstreamUnreachable

from .providers.base import LocalResponse

__all__ = ["HttpxUpstream", "Upstream", "UpstreamResponse", "local_response", "read_chunks"]


class UpstreamResponse(Protocol):
    status: int
    content_type: str | None
    content_encoding: str | None

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises UpstreamTimeout / UpstreamUnreachable."""
        ...

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first `limit` bytes), then closes."""
        ...

    async def aclose(self) -> None: ...

    def header(self, name: str) -> str | None:
        """A response header (lower-case `name`); None when absent."""
        ...


async def read_chunks(response: UpstreamResponse, limit: int | None = None) -> bytes:
    """`UpstreamResponse.read` for a response that streams: its `chunks()` joined (no
    further than `limit` bytes, so an oversized body is not read to the end), then
    closes it."""
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.chunks():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
    finally:
        await response.aclose()
    body = b"".join(parts)
    return body if limit is None else body[:limit]


class Upstream(Protocol):
    async def send(
        self,
        url: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        """POST `body`; returns once the status and headers are in."""
        ...

    async def get(
        self,
        url: str,
        headers: tuple[tuple[str, str], ...],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        """GET `url` (no redirects followed); returns once the status and headers are in."""
        ...

    async def aclose(self) -> None: ...


class _LocalResponse:
    __slots__ = ("_chunks", "content_encoding", "content_type", "status")

    def __init__(self, local: LocalResponse) -> None:
        self.status = local.status
        self.content_type: str | None = local.content_type
        self.content_encoding: str | None = None
        self._chunks = local.chunks

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def read(self, limit: int | None = None) -> bytes:
        body = b"".join(self._chunks)
        return body if limit is None else body[:limit]

    async def aclose(self) -> None:
        return None

    def header(self, name: str) -> str | None:
        return None


def local_response(local: LocalResponse) -> UpstreamResponse:
    return _LocalResponse(local)


class _HttpxResponse:
    __slots__ = ("_response", "content_encoding", "content_type", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.content_type = response.headers.get("content-type")
        self.content_encoding = response.headers.get("content-encoding")

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            # The stream itself, not aiter_raw(): a response built from bytes (MockTransport)
            # counts as already consumed, and nothing here needs httpx's decoding.
            stream: AsyncIterable[bytes] = self._response.stream  # type: ignore[assignment]
            async for chunk in stream:
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"upstream timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(f"upstream failed mid-response: {exc}") from exc

    async def read(self, limit: int | None = None) -> bytes:
        return await read_chunks(self, limit)

    async def aclose(self) -> None:
        await self._response.aclose()

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)


class HttpxUpstream:
    """Calls upstreams through an httpx transport (the transport directly: AsyncClient's
    cookie, auth and redirect handling has no place in a proxy)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def send(
        self,
        url: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        return await self._request("POST", url, headers, body, connect_timeout, read_timeout)

    async def get(
        self,
        url: str,
        headers: tuple[tuple[str, str], ...],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        return await self._request("GET", url, headers, None, connect_timeout, read_timeout)

    async def _request(
        self,
        method: str,
        url: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        timeouts = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": connect_timeout,
        }
        request = httpx.Request(method, url, headers=headers, content=body, extensions={"timeout": timeouts})
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"upstream timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(f"upstream unreachable: {exc}") from exc
        return _HttpxResponse(response)

    async def aclose(self) -> None:
        await self._transport.aclose()
