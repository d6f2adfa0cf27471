"""Google Gemini upstreams: `{base_url}/v1beta/models/{model}:generateContent` (or
`:streamGenerateContent?alt=sse`), key in `x-goog-api-key`. A base URL that ends in
its own API version (`.../v1`) keeps it.

No caller speaks Gemini here, so requests always arrive translated; usage is still read
the Gemini way (`usageMetadata`) for the passthrough contract of the interface.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..protocols.gemini import gemini_url
from ..protocols.gemini_response import usage_from_gemini
from .base import ApiFormat, ChatCall, Operation, ProviderRuntime, UpstreamRequest, Wire
from .http_adapter import MAX_ERROR_MESSAGE, HttpAdapter, UsageReader, json_or_none, plain_message
from .sse import SseRelay, event_json

__all__ = ["GEMINI_USAGE", "GeminiAdapter", "GeminiStreamRelay", "gemini_error_body"]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


GEMINI_USAGE = UsageReader("usageMetadata", usage_from_gemini)


def gemini_error_body(status: int, body: bytes) -> bytes:
    parsed = json_or_none(body)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return body
    return orjson.dumps(
        {
            "error": {
                "code": status,
                "message": plain_message(status, body)[:MAX_ERROR_MESSAGE],
                "status": _STATUS_NAMES.get(status, "INTERNAL"),
            }
        }
    )


class GeminiStreamRelay(SseRelay):
    """Relays a Gemini SSE stream as received; every chunk may carry cumulative
    `usageMetadata`, the last one wins."""

    __slots__ = ()
    usage_marker = GEMINI_USAGE.marker

    def _note_usage(self, event: bytes) -> bool:
        obj = event_json(event)
        if isinstance(obj, dict):
            usage = GEMINI_USAGE.read(obj.get("usageMetadata"))
            if usage is not None:
                self.usage = usage
        return False


class GeminiAdapter(HttpAdapter):
    api_format: str = ApiFormat.GEMINI
    wire: str = Wire.GEMINI
    default_auth: str = "x-goog-api-key"
    usage_reader = GEMINI_USAGE
    relay = GeminiStreamRelay
    error_body = staticmethod(gemini_error_body)

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        # The model and method go after it per call; a base ending in an API version
        # (`.../v1`) keeps it, otherwise v1beta is used.
        base = base_url.rstrip("/")
        return {Operation.CHAT: base + "/" + api_path.strip("/") if api_path else base}

    def build_request(
        self,
        runtime: ProviderRuntime,
        call: ChatCall,
        upstream_model: str,
        translated: dict[str, Any] | None = None,
    ) -> UpstreamRequest:
        return UpstreamRequest(
            url=gemini_url(runtime.url, upstream_model, call.stream),
            headers=runtime.headers,
            # Gemini names the model in the URL, so a same-protocol body needs no edit.
            body=orjson.dumps(translated) if translated is not None else call.raw_body,
            stream=call.stream,
            strip_usage=False,
            translated=translated is not None,
        )

    def side_request(
        self, runtime: ProviderRuntime, operation: str, call: ChatCall, upstream_model: str
    ) -> UpstreamRequest | None:
        # Gemini's embeddings and countTokens take bodies of their own; no caller speaks
        # Gemini to pass one through.
        return None
