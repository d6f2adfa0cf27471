"""Any OpenAI-compatible chat-completions upstream (OpenAI, DeepSeek, DashScope
compatible-mode, vLLM, Ollama, ...). For OpenAI callers bodies pass through: only the
model name is spliced in and, for streams, a usage request is added. For other callers
the translated payload is encoded, always asking streams for usage."""

from __future__ import annotations

from typing import Any

import orjson

from ..jsonsplice import insert_first_member, replace_top_level_string
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

__all__ = [
    "OpenAICompatAdapter",
    "OpenAIStreamRelay",
    "openai_error_body",
    "splice_model",
    "usage_from_openai",
]

_INCLUDE_USAGE = b'{"include_usage":true}'
_MAX_ERROR_MESSAGE = 2000


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_openai(usage: Any) -> Usage | None:
    """Map an OpenAI `usage` object (and DeepSeek's cache fields) to Usage."""
    if not isinstance(usage, dict):
        return None
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    if not cached:
        cached = _int(usage.get("prompt_cache_hit_tokens"))
    reasoning = (
        _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    )
    return Usage(
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        cached_tokens=cached,
        reasoning_tokens=reasoning,
    )


def openai_error_body(status: int, body: bytes) -> bytes:
    """The upstream's error in OpenAI shape: passed as-is if it already has an `error`
    object, otherwise wrapped."""
    parsed: Any = None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return body
    message: str
    if isinstance(parsed, dict) and isinstance(parsed.get("message") or parsed.get("detail"), str):
        message = parsed.get("message") or parsed["detail"]
    elif isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        message = parsed["error"]
    else:
        message = body.decode("utf-8", "replace").strip() or f"upstream returned HTTP {status}"
    return orjson.dumps(
        {
            "error": {
                "message": message[:_MAX_ERROR_MESSAGE],
                "type": "upstream_error",
                "code": f"upstream_{status}",
                "param": None,
            }
        }
    )


class OpenAIStreamRelay:
    """Relays an OpenAI SSE stream, noting usage and dropping the usage-only chunk when
    the gateway (not the caller) asked for it.

    Without stripping, every byte is passed on as soon as it arrives; with stripping,
    complete events are passed on as they complete and only a partial trailing event
    (useless to an SSE client anyway) waits for its end.
    """

    __slots__ = ("_pending", "_strip", "error", "usage")

    def __init__(self, *, strip_usage: bool) -> None:
        self._strip = strip_usage
        self._pending = b""
        self.usage: Usage | None = None
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        buf = self._pending + chunk if self._pending else chunk
        out: list[bytes] = []
        pos = 0
        emitted = 0
        while True:
            end, nxt = next_event_end(buf, pos)
            if end < 0:
                break
            event = buf[pos:end]
            if b'"usage"' in event and self._note_usage(event) and self._strip:
                out.append(buf[emitted:pos])
                emitted = nxt
            elif b'"error"' in event and self.error is None:
                self.error = event_error(event)
            pos = nxt
        self._pending = buf[pos:]
        if not self._strip:
            return chunk
        if emitted == 0:
            return buf[:pos]
        out.append(buf[emitted:pos])
        return b"".join(out)

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        if rest.strip() and b'"usage"' in rest:
            self._note_usage(rest)
        elif b'"error"' in rest and self.error is None:
            self.error = event_error(rest)
        return rest if self._strip else b""

    def _note_usage(self, event: bytes) -> bool:
        """Record the event's usage; True if it is a usage-only chunk (choices == [])."""
        if b'"usage":null' in event and b'"choices":[]' not in event:
            return False
        obj = event_json(event)
        if not isinstance(obj, dict):
            return False
        usage = usage_from_openai(obj.get("usage"))
        if usage is None:
            return False
        self.usage = usage
        return obj.get("choices") == []


class OpenAICompatAdapter:
    api_format: str = ApiFormat.OPENAI
    wire: str = Wire.OPENAI
    answers_locally: bool = False

    def upstream_urls(self, base_url: str, api_path: str) -> dict[str, str]:
        base = base_url.rstrip("/")
        v1 = base if base.endswith("/v1") else base + "/v1"
        chat = base + "/" + api_path.lstrip("/") if api_path else v1 + "/chat/completions"
        # A custom chat path (DashScope's /compatible-mode/v1/chat/completions) puts its
        # embeddings beside it.
        embeddings = (
            chat.removesuffix("chat/completions") + "embeddings"
            if chat.endswith("/chat/completions")
            else v1 + "/embeddings"
        )
        return {Operation.CHAT: chat, Operation.EMBEDDINGS: embeddings}

    # The credential style when the provider does not choose one (Provider.auth_header).
    default_auth: str = "bearer"

    def static_headers(
        self, api_key: str, extra_headers: dict[str, str], auth_header: str = ""
    ) -> tuple[tuple[str, str], ...]:
        # identity: bodies are relayed and read for usage as received, never decompressed.
        fixed = {"content-type": "application/json", "accept-encoding": "identity"}
        return provider_headers(
            fixed,
            api_key=api_key,
            auth_header=auth_header,
            default_auth=self.default_auth,
            extra_headers=extra_headers,
        )

    def url_for(self, url: str, upstream_model: str) -> str:
        """The URL of one call from the runtime's URL (Azure puts the model in it)."""
        return url

    def build_request(
        self,
        runtime: ProviderRuntime,
        call: ChatCall,
        upstream_model: str,
        translated: dict[str, Any] | None = None,
    ) -> UpstreamRequest:
        url = self.url_for(runtime.url, upstream_model)
        if translated is not None:
            payload = translated
            if call.stream:
                # Always ask: usage is recorded whatever the caller wants, and the
                # translator writes the caller's usage only if it asked.
                options = payload.get("stream_options")
                payload["stream_options"] = {
                    **(options if isinstance(options, dict) else {}),
                    "include_usage": True,
                }
            return UpstreamRequest(
                url=url,
                headers=runtime.headers,
                body=orjson.dumps(payload),
                stream=call.stream,
                strip_usage=False,
                translated=True,
            )
        body: bytes | None = call.raw_body
        if upstream_model != call.model:
            body = replace_top_level_string(call.raw_body, "model", call.model, upstream_model)
        strip = call.stream and not call.wants_usage
        if strip and body is not None and not call.has_stream_options:
            body = insert_first_member(body, "stream_options", _INCLUDE_USAGE)
        elif strip:
            body = None  # the caller's stream_options must be edited inside: re-encode
        if body is None:
            payload = dict(call.payload)
            payload["model"] = upstream_model
            if strip:
                options = payload.get("stream_options")
                payload["stream_options"] = {**(options or {}), "include_usage": True}
            body = orjson.dumps(payload)
        return UpstreamRequest(
            url=url, headers=runtime.headers, body=body, stream=call.stream, strip_usage=strip
        )

    def side_request(
        self, runtime: ProviderRuntime, operation: str, call: ChatCall, upstream_model: str
    ) -> UpstreamRequest | None:
        url = runtime.urls.get(operation)
        if url is None or call.protocol != self.wire:
            return None
        return UpstreamRequest(
            url=self.url_for(url, upstream_model),
            headers=runtime.headers,
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
        return usage_from_openai(obj.get("usage")) if isinstance(obj, dict) else None

    def stream_relay(self, *, strip_usage: bool) -> OpenAIStreamRelay:
        return OpenAIStreamRelay(strip_usage=strip_usage)

    def error_body(self, status: int, body: bytes) -> bytes:
        return openai_error_body(status, body)

    def respond_locally(self, request: UpstreamRequest) -> LocalResponse:
        raise NotImplementedError("OpenAI-compatible providers are called over HTTP")


def splice_model(call: ChatCall, upstream_model: str) -> bytes:
    """The caller's body with its top-level model replaced (re-encoded only if the
    splice is ambiguous)."""
    if upstream_model == call.model:
        return call.raw_body
    body = replace_top_level_string(call.raw_body, "model", call.model, upstream_model)
    return body if body is not None else orjson.dumps({**call.payload, "model": upstream_model})
