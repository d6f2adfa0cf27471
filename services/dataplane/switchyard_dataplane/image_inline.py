"""Images given by URL, sent inline to Gemini upstreams.

OpenAI and Anthropic callers pass images as any http(s) URL; Gemini's `fileData.fileUri`
was long limited to Google-hosted URIs (Files API, `gs://`), and the public-URL fetching
Google added in 2026 is not offered by every model (nor can Google reach a URL only the
gateway's network can). So for a Gemini target the data plane downloads each such image
itself and sends it as base64 `inlineData`, which every Gemini model takes. Only calls
to a Gemini target that carry URL images pay for this; failover attempts of one call
share the downloads.

Downloads go through the data plane's upstream client, bounded: http/https only, a few
redirects, a short time limit per image, an `image/*` content type and a total size
limit per call. Any failure is the caller's 400 ("could not fetch image URL ...").

The URL comes from the caller, so by default every host (redirects included) must
resolve to public addresses only: a caller must not make the gateway fetch from the
internal network or a cloud metadata endpoint. `SWITCHYARD_IMAGE_FETCH_ALLOW_PRIVATE`
lifts that for deployments whose images live on internal hosts (and for tests).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import urljoin, urlsplit

from switchyard_common.errors import InvalidRequest, UpstreamTimeout, UpstreamUnreachable

from .protocols.ir import ChatRequest, ImagePart, ToolResultPart
from .upstream import Upstream, UpstreamResponse

__all__ = [
    "FETCH_TIMEOUT_SECONDS",
    "AddressGuard",
    "any_host",
    "public_hosts_only",
    "MAX_IMAGE_BYTES",
    "MAX_REDIRECTS",
    "ImageFetcher",
    "url_images",
]

# All images of one call together; Gemini's inline limit was 20 MB for years.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Per image, redirects included: an image host slower than this would stall the call.
FETCH_TIMEOUT_SECONDS = 10.0
_CONNECT_TIMEOUT_SECONDS = 5.0
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Gemini reads these itself (Files API URIs); downloading them would need its key.
_GOOGLE_HOSTED = frozenset({"generativelanguage.googleapis.com"})
_HEADERS = (("accept", "image/*"), ("accept-encoding", "identity"), ("user-agent", "switchyard"))
_MAX_URL_IN_MESSAGE = 200


# Raises ValueError (the reason) when the gateway must not connect to `host`.
AddressGuard = Callable[[str], Awaitable[None]]


async def public_hosts_only(host: str) -> None:
    """Every address `host` resolves to must be globally routable (no loopback,
    private, link-local, carrier-grade NAT or reserved ranges)."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ValueError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global:
            raise ValueError(f"{host} is not a public address; images are fetched from public hosts only")


async def any_host(host: str) -> None:
    return None


def _fetchable(url: str | None) -> bool:
    if not url or not url.startswith(("http://", "https://")):
        return False  # data: URLs are inline already; gs:// and the like are Gemini's own
    return (urlsplit(url).hostname or "") not in _GOOGLE_HOSTED


def url_images(request: ChatRequest) -> list[ImagePart]:
    """The request's images that must be downloaded (tool results' included)."""
    return [image for image in _images(request) if _fetchable(image.url)]


def _images(request: ChatRequest) -> Iterator[ImagePart]:
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ImagePart):
                yield part
            elif isinstance(part, ToolResultPart):
                yield from (c for c in part.content if isinstance(c, ImagePart))


def _failed(url: str, reason: str) -> InvalidRequest:
    shown = url if len(url) <= _MAX_URL_IN_MESSAGE else url[:_MAX_URL_IN_MESSAGE] + "..."
    return InvalidRequest(
        f"could not fetch image URL {shown}: {reason}", code="invalid_image_url", param="messages"
    )


class ImageFetcher:
    """Downloads the URL images of one call, at most once each."""

    __slots__ = ("_fetched", "_guard", "_total", "_upstream")

    def __init__(self, upstream: Upstream, guard: AddressGuard = public_hosts_only) -> None:
        self._upstream = upstream
        self._guard = guard
        self._fetched: dict[str, tuple[str, str]] = {}  # url -> (media type, base64)
        self._total = 0

    async def inline(self, request: ChatRequest) -> None:
        """Replace the request's http(s) image URLs with their content (in place)."""
        images = url_images(request)
        if not images:
            return
        missing: dict[str, None] = {}
        for image in images:
            if image.url and image.url not in self._fetched:
                missing[image.url] = None
        # All complete (each is time-bounded) before the first failure is raised.
        results = await asyncio.gather(*(self._fetch(url) for url in missing), return_exceptions=True)
        for url, result in zip(missing, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            self._fetched[url] = result
        for image in images:
            media_type, data = self._fetched[image.url or ""]
            image.url, image.data, image.media_type = None, data, media_type

    async def _fetch(self, url: str) -> tuple[str, str]:
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
                return await self._download(url)
        except TimeoutError:
            raise _failed(url, f"no complete answer within {FETCH_TIMEOUT_SECONDS:g} s") from None
        except (UpstreamTimeout, UpstreamUnreachable) as exc:
            raise _failed(url, exc.message) from None

    async def _download(self, url: str) -> tuple[str, str]:
        location = url
        for _ in range(MAX_REDIRECTS + 1):
            if not location.startswith(("http://", "https://")):
                raise _failed(url, "only http and https URLs are fetched")
            try:
                await self._guard(urlsplit(location).hostname or "")
            except ValueError as exc:
                raise _failed(url, str(exc)) from None
            response = await self._upstream.get(
                location,
                _HEADERS,
                connect_timeout=_CONNECT_TIMEOUT_SECONDS,
                read_timeout=FETCH_TIMEOUT_SECONDS,
            )
            if response.status in _REDIRECTS:
                target = response.header("location")
                await response.aclose()
                if not target:
                    raise _failed(url, f"HTTP {response.status} without a Location")
                location = urljoin(location, target)
                continue
            try:
                return await self._read_image(url, response)
            finally:
                await response.aclose()
        raise _failed(url, f"more than {MAX_REDIRECTS} redirects")

    async def _read_image(self, url: str, response: UpstreamResponse) -> tuple[str, str]:
        if response.status != 200:
            raise _failed(url, f"the server answered HTTP {response.status}")
        media_type = (response.content_type or "").partition(";")[0].strip().lower()
        if not media_type.startswith("image/"):
            raise _failed(url, f"the content type {media_type or '(none)'} is not an image")
        if (response.content_encoding or "identity").lower() != "identity":
            raise _failed(url, f"the server sent it {response.content_encoding}-encoded")
        length = response.header("content-length")
        if length is not None and length.isdigit() and self._total + int(length) > MAX_IMAGE_BYTES:
            raise _failed(url, f"the call's images exceed {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
        parts: list[bytes] = []
        async for chunk in response.chunks():
            self._total += len(chunk)
            if self._total > MAX_IMAGE_BYTES:
                raise _failed(url, f"the call's images exceed {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
            parts.append(chunk)
        return media_type, base64.b64encode(b"".join(parts)).decode("ascii")
