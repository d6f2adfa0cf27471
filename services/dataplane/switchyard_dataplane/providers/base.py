"""The provider adapter interface and the plain data it works on.

An adapter knows one upstream wire protocol. It builds the upstream request from the
caller's request, reads usage out of a response or a stream, and shapes upstream error
bodies for the caller. Adapters take and return plain data (no HTTP client, no ASGI);
the data plane does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "ApiFormat",
    "ChatCall",
    "LocalResponse",
    "ProviderAdapter",
    "ProviderRuntime",
    "StreamRelay",
    "UpstreamRequest",
    "Usage",
]


class ApiFormat(StrEnum):
    OPENAI = "openai"
    MOCK = "mock"


@dataclass(slots=True, frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True, frozen=True)
class ChatCall:
    """A validated OpenAI chat-completions request, with the exact bytes the caller sent."""

    raw_body: bytes
    payload: dict[str, Any]
    model: str
    stream: bool
    # The caller set stream_options (any value); decides between splicing and re-encoding.
    has_stream_options: bool
    # The caller asked for the usage chunk (stream_options.include_usage is true).
    wants_usage: bool


@dataclass(slots=True, frozen=True)
class ProviderRuntime:
    """Everything needed to call one provider, computed once per snapshot."""

    slug: str
    api_format: str
    url: str
    # Content type, auth and the provider's extra headers, ready to send.
    headers: tuple[tuple[str, str], ...]
    timeout_seconds: float
    connect_timeout_seconds: float
    adapter: ProviderAdapter


@dataclass(slots=True, frozen=True)
class UpstreamRequest:
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    # The adapter asked the upstream for a usage chunk the caller did not ask for,
    # so the relay must drop it.
    strip_usage: bool


@dataclass(slots=True)
class LocalResponse:
    """An answer produced in-process by an adapter that needs no network."""

    status: int
    content_type: str
    chunks: list[bytes] = field(default_factory=list)


class StreamRelay(Protocol):
    """Stateful reader of one upstream stream.

    `feed` takes bytes as they arrive and returns the bytes to pass to the caller now
    (possibly fewer, never re-encoded); `finish` returns what is left at the end.
    `usage` is the last usage the stream reported, if any.
    """

    usage: Usage | None

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class ProviderAdapter(Protocol):
    api_format: str
    # True when the adapter answers in-process (respond_locally) instead of over HTTP.
    answers_locally: bool

    def upstream_url(self, base_url: str, api_path: str) -> str: ...

    def static_headers(self, api_key: str, extra_headers: dict[str, str]) -> tuple[tuple[str, str], ...]: ...

    def build_request(
        self, runtime: ProviderRuntime, call: ChatCall, upstream_model: str
    ) -> UpstreamRequest: ...

    def parse_response(self, body: bytes) -> Usage | None: ...

    def stream_relay(self, *, strip_usage: bool) -> StreamRelay: ...

    def error_body(self, status: int, body: bytes) -> bytes: ...

    def respond_locally(self, request: UpstreamRequest) -> LocalResponse: ...
