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
from .sse import event_error, event_json, next_event_end

__all__ = ["GeminiAdapter", "GeminiStreamRelay", "gemini_error_body", "usage_from_gemini"]

_MAX_ERROR_MESSAGE = 2000
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_gemini(metadata: Any) -> Usage | None:
    """Map `usageMetadata`: the prompt count includes cached content; thoughts are
    counted apart from candidates, so they are added to the output."""
    if not isinstance(metadata, dict):
        return None
    thoughts = _int(metadata.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=_int(metadata.get("promptTokenCount")) + _int(metadata.get("toolUsePromptTokenCount")),
        output_tokens=_int(metadata.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(metadata.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def gemini_error_body(status: int, body: bytes) -> bytes:
    parsed: Any = None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return body
    message = body.decode("utf-8", "replace").strip() or f"upstream returned HTTP {status}"
    return orjson.dumps(
        {
            "error": {
                "code": status,
                "message": message[:_MAX_ERROR_MESSAGE],
                "status": _STATUS_NAMES.get(status, "INTERNAL"),
            }
        }
    )


class GeminiStreamRelay:
    """Relays a Gemini SSE stream as received; every chunk may carry cumulative
    `usageMetadata`, the last one wins."""

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
            if b'"usageMetadata"' in buf[pos:end]:
                self._note_usage(buf[pos:end])
            elif b'"error"' in buf[pos:end] and self.error is None:
                self.error = event_error(buf[pos:end])
            pos = nxt
        self._pending = buf[pos:]
        return chunk

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        if b'"usageMetadata"' in rest:
            self._note_usage(rest)
        elif b'"error"' in rest and self.error is None:
            self.error = event_error(rest)
        return b""

    def _note_usage(self, event: bytes) -> None:
        obj = event_json(event)
        if isinstance(obj, dict):
            usage = usage_from_gemini(obj.get("usageMetadata"))
            if usage is not None:
                self.usage = usage


class GeminiAdapter:
    api_format: str = ApiFormat.GEMINI
    wire: str = Wire.GEMINI
    answers_locally: bool = False
    # The credential style when the provider does not choose one (Provider.auth_header).
    default_auth: str = "x-goog-api-key"

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        # The model and method go after it per call; a base ending in an API version
        # (`.../v1`) keeps it, otherwise v1beta is used.
        base = base_url.rstrip("/")
        return {Operation.CHAT: base + "/" + api_path.strip("/") if api_path else base}

    def static_headers(
        self, api_key: str, extra_headers: dict[str, str], auth_header: str = ""
    ) -> tuple[tuple[str, str], ...]:
        fixed = {"content-type": "application/json", "accept-encoding": "identity"}
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
        return None

    def parse_response(self, body: bytes) -> Usage | None:
        if b'"usageMetadata"' not in body:
            return None
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return usage_from_gemini(obj.get("usageMetadata")) if isinstance(obj, dict) else None

    def stream_relay(self, *, strip_usage: bool) -> GeminiStreamRelay:
        return GeminiStreamRelay()

    def error_body(self, status: int, body: bytes) -> bytes:
        return gemini_error_body(status, body)

    def respond_locally(self, request: UpstreamRequest) -> LocalResponse:
        raise NotImplementedError("Gemini providers are called over HTTP")
