"""The provider adapter interface and the plain data it works on.

An adapter knows one upstream: its URLs, its auth headers and its wire protocol. It
builds the upstream request (splicing the caller's body when the caller speaks the same
protocol, encoding an already translated payload otherwise), reads usage out of a
passthrough response or stream, and shapes the upstream's error bodies for callers of
its own protocol. Translation between protocols is not the adapter's business
(protocols/translate.py does it). Adapters take and return plain data (no HTTP client,
no ASGI); the data plane does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from switchyard_common.config_schema import AUTH_HEADER_BEARER, AUTH_HEADER_NONE

from ..protocols.ir import TokenUsage

__all__ = [
    "ApiFormat",
    "ChatCall",
    "LocalResponse",
    "MEDIA_OPERATIONS",
    "Operation",
    "ProviderAdapter",
    "ProviderRuntime",
    "StreamRelay",
    "UpstreamRequest",
    "Wire",
    "provider_headers",
]


class ApiFormat(StrEnum):
    """How a provider is configured (`Provider.api_format`)."""

    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    MOCK = "mock"


class Wire(StrEnum):
    """The protocol spoken on the wire; the keys of `protocols.translate.CODECS`."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


class Operation(StrEnum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    COUNT_TOKENS = "count_tokens"
    # Media operations (media_routes.py): OpenAI's paths, Mistral's OCR, and the
    # gateway's own segmentation route; the value is the path after `/v1/`.
    IMAGES_GENERATIONS = "images/generations"
    IMAGES_EDITS = "images/edits"
    IMAGES_VARIATIONS = "images/variations"
    AUDIO_TRANSCRIPTIONS = "audio/transcriptions"
    AUDIO_TRANSLATIONS = "audio/translations"
    AUDIO_SPEECH = "audio/speech"
    OCR = "ocr"
    SEGMENTATIONS = "vision/segmentations"


MEDIA_OPERATIONS = (
    Operation.IMAGES_GENERATIONS,
    Operation.IMAGES_EDITS,
    Operation.IMAGES_VARIATIONS,
    Operation.AUDIO_TRANSCRIPTIONS,
    Operation.AUDIO_TRANSLATIONS,
    Operation.AUDIO_SPEECH,
    Operation.OCR,
    Operation.SEGMENTATIONS,
)


@dataclass(slots=True, frozen=True)
class ChatCall:
    """A validated caller request (chat, messages, embeddings or count_tokens), with the
    exact bytes the caller sent."""

    raw_body: bytes
    payload: dict[str, Any]
    model: str
    stream: bool
    # The caller set stream_options (any value); decides between splicing and re-encoding.
    has_stream_options: bool
    # The caller asked for the usage chunk (OpenAI stream_options.include_usage is true).
    wants_usage: bool
    # The caller's protocol (a Wire value).
    protocol: str = Wire.OPENAI
    # Caller headers an upstream of the caller's protocol must see (anthropic-version, -beta).
    forward_headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, frozen=True)
class ProviderRuntime:
    """Everything needed to call one provider, computed once per snapshot."""

    slug: str
    api_format: str
    # Chat URL; for adapters whose URL depends on the model (Azure, Gemini), the fixed
    # part the adapter completes per request.
    url: str
    # Content type, auth and the provider's extra headers, ready to send.
    headers: tuple[tuple[str, str], ...]
    timeout_seconds: float
    connect_timeout_seconds: float
    adapter: ProviderAdapter
    # URLs of the other operations the provider serves (same conventions as `url`).
    urls: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class UpstreamRequest:
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    # The adapter asked the upstream for a usage chunk the caller did not ask for,
    # so the relay must drop it.
    strip_usage: bool
    # The body was translated from the caller's protocol: answers must be translated back.
    translated: bool = False


@dataclass(slots=True)
class LocalResponse:
    """An answer produced in-process by an adapter that needs no network."""

    status: int
    content_type: str
    chunks: list[bytes] = field(default_factory=list)


class StreamRelay(Protocol):
    """Stateful reader of one upstream stream.

    `feed` takes bytes as they arrive and returns the bytes to pass to the caller now;
    `finish` returns what is left at the end. `usage` is the last usage the stream
    reported, if any; `error` the message of an error the upstream reported inside the
    stream (after its success status), if any.
    """

    @property
    def usage(self) -> TokenUsage | None: ...

    @property
    def error(self) -> str | None: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class ProviderAdapter(Protocol):
    api_format: str
    wire: str
    # True when the adapter answers in-process (respond_locally) instead of over HTTP.
    answers_locally: bool

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        """Operation -> URL (or the fixed part of it), once per snapshot; an operation
        the provider cannot serve is absent. Must contain Operation.CHAT."""
        ...

    def static_headers(
        self, api_key: str, extra_headers: dict[str, str], auth_header: str = ""
    ) -> tuple[tuple[str, str], ...]:
        """Headers of every call to the provider, once per snapshot; `auth_header` is
        `Provider.auth_header` (empty: this format's own credential header)."""
        ...

    def build_request(
        self,
        runtime: ProviderRuntime,
        call: ChatCall,
        upstream_model: str,
        translated: dict[str, Any] | None = None,
    ) -> UpstreamRequest:
        """The chat request: `call`'s own body (same protocol) with the model spliced in,
        or `translated` (a payload already in this adapter's protocol) encoded."""
        ...

    def side_request(
        self, runtime: ProviderRuntime, operation: str, call: ChatCall, upstream_model: str
    ) -> UpstreamRequest | None:
        """A non-chat operation passed through (embeddings, count_tokens); None when the
        provider cannot serve it for callers of `call.protocol`."""
        ...

    def media_request(
        self,
        runtime: ProviderRuntime,
        operation: str,
        body: bytes,
        content_type: str,
        upstream_model: str,
        stream: bool,
    ) -> UpstreamRequest | None:
        """A media call (images, audio, ocr, segmentation) whose `body` (of
        `content_type`, the upstream model already in it) is sent as it is; None when
        the provider does not serve `operation`."""
        ...

    def parse_response(self, body: bytes) -> TokenUsage | None: ...

    def stream_relay(self, *, strip_usage: bool) -> StreamRelay: ...

    def error_body(self, status: int, body: bytes) -> bytes:
        """An upstream error body shaped for callers of this adapter's protocol."""
        ...

    def respond_locally(self, request: UpstreamRequest) -> LocalResponse: ...


def provider_headers(
    fixed: Mapping[str, str],
    *,
    api_key: str,
    auth_header: str,
    default_auth: str,
    extra_headers: Mapping[str, str],
) -> tuple[tuple[str, str], ...]:
    """`fixed` headers, then the credential sent as `auth_header` says ("bearer",
    "none" or a header name carrying the raw key; empty means `default_auth`, the
    format's own style), then the provider's extra headers, which win over same-named
    ones. Names are lower-case."""
    headers = {name.lower(): value for name, value in fixed.items()}
    style = (auth_header or default_auth).lower()
    if api_key and style != AUTH_HEADER_NONE:
        if style == AUTH_HEADER_BEARER:
            headers["authorization"] = f"Bearer {api_key}"
        else:
            headers[style] = api_key
    for name, value in extra_headers.items():
        headers[name.lower()] = value
    return tuple(headers.items())
