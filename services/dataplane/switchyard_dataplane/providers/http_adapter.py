"""What the adapters of networked upstreams share: credential headers, same-protocol
passthrough of side operations (embeddings, count_tokens), usage read from answers,
stream relays and the helpers their error bodies are shaped with.

A subclass names its protocol's parts (`usage_reader`, `relay`, `error_body`) and
keeps its own URLs and chat request building.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from switchyard_common.config_schema import AUTH_HEADER_BEARER

from ..jsonsplice import replace_top_level_string
from ..protocols.ir import TokenUsage
from .base import ChatCall, LocalResponse, ProviderRuntime, UpstreamRequest, provider_headers
from .sse import SseRelay

__all__ = [
    "JSON_HEADERS",
    "MAX_ERROR_MESSAGE",
    "HttpAdapter",
    "UsageReader",
    "json_or_none",
    "plain_message",
    "splice_model",
]

# identity: bodies are relayed and read for usage as received, never decompressed.
JSON_HEADERS: Mapping[str, str] = {"content-type": "application/json", "accept-encoding": "identity"}
# Upstream error text kept in a wrapped error body.
MAX_ERROR_MESSAGE = 2000


def json_or_none(body: bytes) -> Any:
    """The JSON of an upstream error body, None if it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def plain_message(status: int, body: bytes) -> str:
    """An error body in no shape a protocol knows, as a message."""
    return body.decode("utf-8", "replace").strip() or f"upstream returned HTTP {status}"


@dataclass(frozen=True, slots=True)
class UsageReader:
    """Where a protocol's answers keep usage: top-level `key`, an object mapped by
    `convert` (the protocol module's own reader)."""

    key: str
    convert: Callable[[dict[str, Any]], TokenUsage | None]
    # The quoted key: a body without it is never parsed.
    marker: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "marker", f'"{self.key}"'.encode())

    def from_body(self, body: bytes) -> TokenUsage | None:
        if self.marker not in body:
            return None
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return self.read(obj.get(self.key)) if isinstance(obj, dict) else None

    def read(self, usage: Any) -> TokenUsage | None:
        """`convert` of a usage object; None when `usage` is not one."""
        return self.convert(usage) if isinstance(usage, dict) else None


def splice_model(call: ChatCall, upstream_model: str) -> bytes:
    """The caller's body with its top-level model replaced (re-encoded only if the
    splice is ambiguous)."""
    if upstream_model == call.model:
        return call.raw_body
    body = replace_top_level_string(call.raw_body, "model", call.model, upstream_model)
    return body if body is not None else orjson.dumps({**call.payload, "model": upstream_model})


class HttpAdapter:
    """The ProviderAdapter methods every networked upstream implements alike.

    Subclasses set `api_format`, `wire`, `usage_reader`, `relay` and `error_body`
    (`staticmethod(<protocol>_error_body)`), and write `upstream_urls` and
    `build_request`.
    """

    api_format: str
    wire: str
    answers_locally: bool = False
    # The credential style when the provider does not choose one (Provider.auth_header).
    default_auth: str = AUTH_HEADER_BEARER
    # Sent on every call, before the credential and the provider's extra headers.
    fixed_headers: ClassVar[Mapping[str, str]] = JSON_HEADERS
    usage_reader: ClassVar[UsageReader]
    relay: ClassVar[type[SseRelay]]

    def static_headers(
        self, api_key: str, extra_headers: dict[str, str], auth_header: str = ""
    ) -> tuple[tuple[str, str], ...]:
        return provider_headers(
            self.fixed_headers,
            api_key=api_key,
            auth_header=auth_header,
            default_auth=self.default_auth,
            extra_headers=extra_headers,
        )

    def url_for(self, url: str, upstream_model: str) -> str:
        """The URL of one call from the runtime's URL (Azure puts the model in it)."""
        return url

    def passthrough_headers(self, runtime: ProviderRuntime, call: ChatCall) -> tuple[tuple[str, str], ...]:
        """The headers of a call whose body is the caller's own (same protocol)."""
        return runtime.headers

    def side_request(
        self, runtime: ProviderRuntime, operation: str, call: ChatCall, upstream_model: str
    ) -> UpstreamRequest | None:
        url = runtime.urls.get(operation)
        if url is None or call.protocol != self.wire:
            return None
        return UpstreamRequest(
            url=self.url_for(url, upstream_model),
            headers=self.passthrough_headers(runtime, call),
            body=splice_model(call, upstream_model),
            stream=False,
            strip_usage=False,
        )

    def media_request(
        self,
        runtime: ProviderRuntime,
        operation: str,
        body: bytes,
        content_type: str,
        upstream_model: str,
        stream: bool,
    ) -> UpstreamRequest | None:
        url = runtime.urls.get(operation)
        if url is None:
            return None
        # The caller's content type (a multipart body's boundary is in it) replaces JSON's.
        headers = tuple((n, v) for n, v in runtime.headers if n != "content-type")
        return UpstreamRequest(
            url=self.url_for(url, upstream_model),
            headers=(("content-type", content_type), *headers),
            body=body,
            stream=stream,
            strip_usage=False,
        )

    def parse_response(self, body: bytes) -> TokenUsage | None:
        return self.usage_reader.from_body(body)

    def stream_relay(self, *, strip_usage: bool) -> SseRelay:
        return self.relay(strip_usage=strip_usage)

    def respond_locally(self, request: UpstreamRequest) -> LocalResponse:
        raise NotImplementedError(f"{type(self).__name__} calls its provider over HTTP")
