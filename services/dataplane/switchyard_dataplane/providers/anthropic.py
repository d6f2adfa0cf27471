"""Anthropic Messages upstreams (`{base_url}/v1/messages`, `x-api-key`).

Anthropic callers' bodies pass through with the model spliced in, and their
`anthropic-version` / `anthropic-beta` headers are forwarded; their streams are relayed
as received, with usage read from `message_start` and `message_delta`. Other callers'
requests arrive translated.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..http_errors import anthropic_error_type
from .base import (
    ApiFormat,
    ChatCall,
    LocalResponse,
    Operation,
    ProviderRuntime,
    UpstreamRequest,
    Usage,
    Wire,
    provider_headers,
)
from .openai_compat import splice_model
from .sse import event_error, event_json, next_event_end

__all__ = [
    "DEFAULT_ANTHROPIC_VERSION",
    "AnthropicAdapter",
    "AnthropicStreamRelay",
    "anthropic_error_body",
    "usage_from_anthropic",
]

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
_BETA = "anthropic-beta"
_MAX_ERROR_MESSAGE = 2000


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_anthropic(usage: Any, earlier: Usage | None = None) -> Usage | None:
    """Map an Anthropic `usage` object to Usage (whose input counts cache reads and
    writes, which Anthropic's `input_tokens` leaves out). Fields absent here (a
    `message_delta` carries only some) keep their `earlier` value."""
    if not isinstance(usage, dict):
        return None
    base = earlier or Usage()
    if "input_tokens" in usage or "cache_read_input_tokens" in usage:
        cached = _int(usage.get("cache_read_input_tokens"))
        input_tokens = (
            _int(usage.get("input_tokens")) + cached + _int(usage.get("cache_creation_input_tokens"))
        )
    else:
        cached, input_tokens = base.cached_tokens, base.input_tokens
    output = _int(usage.get("output_tokens")) if "output_tokens" in usage else base.output_tokens
    return Usage(input_tokens=input_tokens, output_tokens=output, cached_tokens=cached)


def anthropic_error_body(status: int, body: bytes) -> bytes:
    """The upstream's error in Anthropic shape: as-is when it already is one, wrapped
    otherwise."""
    parsed: Any = None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("type") == "error" and isinstance(parsed.get("error"), dict):
        return body
    message: str
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        message = str(parsed["error"].get("message") or f"upstream returned HTTP {status}")
    elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        message = parsed["message"]
    else:
        message = body.decode("utf-8", "replace").strip() or f"upstream returned HTTP {status}"
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message[:_MAX_ERROR_MESSAGE]},
        }
    )


class AnthropicStreamRelay:
    """Relays an Anthropic SSE stream byte for byte, reading usage from the events that
    carry it (a partial event waits in a buffer only for that reading)."""

    __slots__ = ("_pending", "error", "usage")

    def __init__(self) -> None:
        self._pending = b""
        self.usage: Usage | None = None
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        buf = self._pending + chunk if self._pending else chunk
        pos = 0
        while True:
            end, nxt = next_event_end(buf, pos)
            if end < 0:
                break
            event = buf[pos:end]
            if b'"usage"' in event:
                self._note_usage(event)
            elif b'"error"' in event and self.error is None:
                self.error = event_error(event)
            pos = nxt
        self._pending = buf[pos:]
        return chunk

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        if b'"usage"' in rest:
            self._note_usage(rest)
        elif b'"error"' in rest and self.error is None:
            self.error = event_error(rest)
        return b""

    def _note_usage(self, event: bytes) -> None:
        obj = event_json(event)
        if not isinstance(obj, dict):
            return
        if obj.get("type") == "message_start" and isinstance(obj.get("message"), dict):
            usage = usage_from_anthropic(obj["message"].get("usage"), self.usage)
        else:
            usage = usage_from_anthropic(obj.get("usage"), self.usage)
        if usage is not None:
            self.usage = usage


def with_caller_headers(
    headers: tuple[tuple[str, str], ...], forward: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """The provider's headers with the caller's anthropic-* headers: the caller's version
    wins (it knows what its request uses); beta flags of both are sent."""
    if not forward:
        return headers
    out = dict(headers)
    for name, value in forward:
        if name == _BETA and out.get(_BETA):
            flags = [f.strip() for f in f"{out[_BETA]},{value}".split(",") if f.strip()]
            out[_BETA] = ",".join(dict.fromkeys(flags))
        else:
            out[name] = value
    return tuple(out.items())


class AnthropicAdapter:
    api_format: str = ApiFormat.ANTHROPIC
    wire: str = Wire.ANTHROPIC
    answers_locally: bool = False
    # The credential style when the provider does not choose one (Provider.auth_header).
    default_auth: str = "x-api-key"

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        base = base_url.rstrip("/")
        v1 = base if base.endswith("/v1") else base + "/v1"
        chat = base + "/" + api_path.lstrip("/") if api_path else v1 + "/messages"
        return {Operation.CHAT: chat, Operation.COUNT_TOKENS: chat + "/count_tokens"}

    def static_headers(
        self, api_key: str, extra_headers: dict[str, str], auth_header: str = ""
    ) -> tuple[tuple[str, str], ...]:
        fixed = {
            "content-type": "application/json",
            "accept-encoding": "identity",
            "anthropic-version": DEFAULT_ANTHROPIC_VERSION,
        }
        return provider_headers(
            fixed,
            api_key=api_key,
            auth_header=auth_header,
            default_auth=self.default_auth,
            extra_headers=extra_headers,
        )

    def build_request(
        self,
        runtime: ProviderRuntime,
        call: ChatCall,
        upstream_model: str,
        translated: dict[str, Any] | None = None,
    ) -> UpstreamRequest:
        if translated is not None:
            return UpstreamRequest(
                url=runtime.url,
                headers=runtime.headers,
                body=orjson.dumps(translated),
                stream=call.stream,
                strip_usage=False,
                translated=True,
            )
        return UpstreamRequest(
            url=runtime.url,
            headers=with_caller_headers(runtime.headers, call.forward_headers),
            body=splice_model(call, upstream_model),
            stream=call.stream,
            strip_usage=False,
        )

    def side_request(
        self, runtime: ProviderRuntime, operation: str, call: ChatCall, upstream_model: str
    ) -> UpstreamRequest | None:
        url = runtime.urls.get(operation)
        if url is None or call.protocol != self.wire:
            return None
        return UpstreamRequest(
            url=url,
            headers=with_caller_headers(runtime.headers, call.forward_headers),
            body=splice_model(call, upstream_model),
            stream=False,
            strip_usage=False,
        )

    def parse_response(self, body: bytes) -> Usage | None:
        if b'"usage"' not in body:
            return None
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return usage_from_anthropic(obj.get("usage")) if isinstance(obj, dict) else None

    def stream_relay(self, *, strip_usage: bool) -> AnthropicStreamRelay:
        return AnthropicStreamRelay()

    def error_body(self, status: int, body: bytes) -> bytes:
        return anthropic_error_body(status, body)

    def respond_locally(self, request: UpstreamRequest) -> LocalResponse:
        raise NotImplementedError("Anthropic providers are called over HTTP")
