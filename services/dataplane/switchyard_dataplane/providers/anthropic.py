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
from ..protocols.anthropic_wire import merge_usage, usage_from_anthropic
from .base import ApiFormat, ChatCall, Operation, ProviderRuntime, UpstreamRequest, Wire
from .http_adapter import (
    JSON_HEADERS,
    MAX_ERROR_MESSAGE,
    HttpAdapter,
    UsageReader,
    json_or_none,
    plain_message,
    splice_model,
)
from .sse import SseRelay, event_json

__all__ = [
    "ANTHROPIC_USAGE",
    "DEFAULT_ANTHROPIC_VERSION",
    "AnthropicAdapter",
    "AnthropicStreamRelay",
    "anthropic_error_body",
]

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
_BETA = "anthropic-beta"


ANTHROPIC_USAGE = UsageReader("usage", usage_from_anthropic)


def anthropic_error_body(status: int, body: bytes) -> bytes:
    """The upstream's error in Anthropic shape: as-is when it already is one, wrapped
    otherwise."""
    parsed = json_or_none(body)
    if isinstance(parsed, dict) and parsed.get("type") == "error" and isinstance(parsed.get("error"), dict):
        return body
    message: str
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        message = str(parsed["error"].get("message") or f"upstream returned HTTP {status}")
    elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        message = parsed["message"]
    else:
        message = plain_message(status, body)
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message[:MAX_ERROR_MESSAGE]},
        }
    )


class AnthropicStreamRelay(SseRelay):
    """Relays an Anthropic SSE stream byte for byte, reading usage from the events that
    carry it (`message_start`, `message_delta`)."""

    __slots__ = ("_seen",)
    usage_marker = ANTHROPIC_USAGE.marker

    def __init__(self, *, strip_usage: bool = False) -> None:
        super().__init__(strip_usage=strip_usage)
        # The usage fields of the events so far (merge_usage).
        self._seen: dict[str, Any] = {}

    def _note_usage(self, event: bytes) -> bool:
        obj = event_json(event)
        if not isinstance(obj, dict):
            return False
        if obj.get("type") == "message_start" and isinstance(obj.get("message"), dict):
            usage = obj["message"].get("usage")
        else:
            usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = merge_usage(self._seen, usage)
        return False


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


class AnthropicAdapter(HttpAdapter):
    api_format: str = ApiFormat.ANTHROPIC
    wire: str = Wire.ANTHROPIC
    default_auth: str = "x-api-key"
    fixed_headers = {**JSON_HEADERS, "anthropic-version": DEFAULT_ANTHROPIC_VERSION}
    usage_reader = ANTHROPIC_USAGE
    relay = AnthropicStreamRelay
    error_body = staticmethod(anthropic_error_body)

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        base = base_url.rstrip("/")
        v1 = base if base.endswith("/v1") else base + "/v1"
        chat = base + "/" + api_path.lstrip("/") if api_path else v1 + "/messages"
        return {Operation.CHAT: chat, Operation.COUNT_TOKENS: chat + "/count_tokens"}

    def passthrough_headers(self, runtime: ProviderRuntime, call: ChatCall) -> tuple[tuple[str, str], ...]:
        return with_caller_headers(runtime.headers, call.forward_headers)

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
            headers=self.passthrough_headers(runtime, call),
            body=splice_model(call, upstream_model),
            stream=call.stream,
            strip_usage=False,
        )
