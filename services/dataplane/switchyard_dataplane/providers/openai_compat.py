"""Any OpenAI-compatible chat-completions upstream (OpenAI, DeepSeek, DashScope
compatible-mode, vLLM, Ollama, ...). For OpenAI callers bodies pass through: only the
model name is spliced in and, for streams, a usage request is added. For other callers
the translated payload is encoded, always asking streams for usage."""

from __future__ import annotations

from typing import Any

import orjson

from ..jsonsplice import insert_first_member, replace_top_level_string
from ..protocols.openai_wire import usage_from_openai
from .base import MEDIA_OPERATIONS, ApiFormat, ChatCall, Operation, ProviderRuntime, UpstreamRequest, Wire
from .http_adapter import (
    MAX_ERROR_MESSAGE,
    HttpAdapter,
    UsageReader,
    json_or_none,
    plain_message,
    splice_model,
)
from .sse import SseRelay, event_json

__all__ = [
    "OPENAI_USAGE",
    "OpenAICompatAdapter",
    "OpenAIStreamRelay",
    "openai_error_body",
    "splice_model",
]

_INCLUDE_USAGE = b'{"include_usage":true}'


OPENAI_USAGE = UsageReader("usage", usage_from_openai)


def openai_error_body(status: int, body: bytes) -> bytes:
    """The upstream's error in OpenAI shape: passed as-is if it already has an `error`
    object, otherwise wrapped."""
    parsed = json_or_none(body)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return body
    message: str
    if isinstance(parsed, dict) and isinstance(parsed.get("message") or parsed.get("detail"), str):
        message = parsed.get("message") or parsed["detail"]
    elif isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        message = parsed["error"]
    else:
        message = plain_message(status, body)
    return orjson.dumps(
        {
            "error": {
                "message": message[:MAX_ERROR_MESSAGE],
                "type": "upstream_error",
                "code": f"upstream_{status}",
                "param": None,
            }
        }
    )


class OpenAIStreamRelay(SseRelay):
    """Relays an OpenAI SSE stream, noting usage and dropping the usage-only chunk when
    the gateway (not the caller) asked for it."""

    __slots__ = ()
    usage_marker = OPENAI_USAGE.marker
    # Once usage is asked for, every chunk carries `"usage":null`, error chunks too.
    marker_in_errors = True

    def _note_usage(self, event: bytes) -> bool:
        """Record the event's usage; True if it is a usage-only chunk (choices == [])."""
        if b'"usage":null' in event and b'"choices":[]' not in event:
            return False
        obj = event_json(event)
        if not isinstance(obj, dict):
            return False
        usage = OPENAI_USAGE.read(obj.get("usage"))
        if usage is None:
            return False
        self.usage = usage
        return obj.get("choices") == []


class OpenAICompatAdapter(HttpAdapter):
    api_format: str = ApiFormat.OPENAI
    wire: str = Wire.OPENAI
    usage_reader = OPENAI_USAGE
    relay = OpenAIStreamRelay
    error_body = staticmethod(openai_error_body)

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
        # Media operations sit beside embeddings (OpenAI's paths; vLLM, LocalAI and
        # Mistral's OCR follow them).
        root = embeddings.removesuffix("embeddings")
        media: dict[str, str] = {op: root + op.value for op in MEDIA_OPERATIONS}
        return {Operation.CHAT: chat, Operation.EMBEDDINGS: embeddings, **media}

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
