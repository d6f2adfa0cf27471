"""The production transport under the data plane's httpx client: aiohttp's pool.

httpx is the one client API (requests, responses, timeouts, exceptions; tests swap in
`httpx.MockTransport`). Its own pool (httpcore) is the bottleneck at concurrency: on
one core at concurrency 32 a proxy did ~460 req/s with it and ~4,400 with this
transport (docs/adr/002). The transport maps aiohttp's failures to httpx's exception
classes, so `HttpxUpstream` classifies them the same way whatever carries the bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

# Headers aiohttp computes itself from the body and URL.
_SKIP_HEADERS = frozenset((b"host", b"content-length", b"transfer-encoding"))


class _AiohttpStream(httpx.AsyncByteStream):
    __slots__ = ("_request", "_response")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout("upstream read timed out", request=self._request) from exc
        except aiohttp.ClientError as exc:
            message = f"upstream failed mid-response: {exc or type(exc).__name__}"
            raise httpx.ReadError(message, request=self._request) from exc

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp ClientSession, created lazily inside the running loop. The request's
    httpx timeouts apply: `connect` to getting a pooled connection and connecting, `read`
    to each socket read (so a long stream is fine while it keeps moving)."""

    def __init__(self, *, pool_size: int = 256, keepalive_timeout: float = 30.0) -> None:
        self._pool_size = pool_size
        self._keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self._pool_size,
                keepalive_timeout=self._keepalive_timeout,
                ttl_dns_cache=60,
            )
            # Bodies are relayed as received and read for usage: never decompress, and
            # send no headers of aiohttp's own choosing.
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout") or {}
        key = (given.get("connect"), given.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=key[0], sock_read=key[1])
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() not in _SKIP_HEADERS
        ]
        try:
            response = await self._get_session().request(
                request.method,
                str(request.url),
                headers=headers,
                data=request.content,
                timeout=self._timeout(request),
                allow_redirects=False,
            )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout("upstream connect timed out", request=request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout("upstream timed out", request=request) from exc
        except aiohttp.ClientError as exc:
            message = f"upstream unreachable: {exc or type(exc).__name__}"
            raise httpx.ConnectError(message, request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_AiohttpStream(response, request),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
