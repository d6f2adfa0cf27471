"""The Google Gemini codec (`generateContent` / `streamGenerateContent?alt=sse`, v1beta).

Gemini's wire format keeps the model and the streaming choice in the URL, so
`build_request` returns only the body and `gemini_path` / `gemini_url` give the URL;
authentication is the `x-goog-api-key: <key>` header. The work is split by concern:
gemini_request (bodies), gemini_parts (content parts, thought signatures, call ids),
gemini_schema (tool schemas), gemini_response (answers, usage, errors) and
gemini_stream (SSE).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .gemini_parts import SYNTHETIC_ID_PREFIX
from .gemini_request import build_gemini_request, parse_gemini_request
from .gemini_response import (
    build_gemini_error,
    build_gemini_response,
    parse_gemini_error,
    parse_gemini_response,
)
from .gemini_stream import GeminiStreamDecoder, GeminiStreamEncoder
from .ir import ChatRequest, ChatResponse, ErrorInfo

__all__ = ["API_KEY_HEADER", "GeminiCodec", "gemini_path", "gemini_url", "new_call_id"]

API_KEY_HEADER = "x-goog-api-key"
_DEFAULT_VERSION = "v1beta"


def new_call_id() -> str:
    """An id for a function call Gemini sent without one. Random rather than ordinal:
    Anthropic refuses a conversation in which two tool_use blocks share an id."""
    return f"{SYNTHETIC_ID_PREFIX}{uuid.uuid4().hex[:24]}"


def gemini_path(model: str, stream: bool, *, api_version: str = _DEFAULT_VERSION) -> str:
    """`/v1beta/models/{model}:generateContent`, or the SSE streaming method. A model
    given as `models/x` or `tunedModels/x` keeps its collection; an empty
    `api_version` leaves the version segment out (base URL already ends with it)."""
    name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    prefix = f"/{api_version.strip('/')}" if api_version else ""
    return f"{prefix}/{quote(name, safe='/')}:{method}"


def gemini_url(base_url: str, model: str, stream: bool) -> str:
    """The full URL for a provider whose base URL is Gemini's host, with or without a
    trailing API version (`https://generativelanguage.googleapis.com[/v1beta]`)."""
    base = base_url.rstrip("/")
    last = base.rsplit("/", 1)[-1]
    versioned = last.startswith("v1") or last.startswith("v2")
    return base + gemini_path(model, stream, api_version="" if versioned else _DEFAULT_VERSION)


class GeminiCodec:
    """`Codec` for Gemini. `new_id` makes ids for id-less function calls in responses
    and streams (tests pass a deterministic one)."""

    name = "gemini"

    def __init__(self, new_id: Callable[[], str] = new_call_id) -> None:
        self._new_id = new_id

    def parse_request(self, payload: dict[str, Any]) -> ChatRequest:
        return parse_gemini_request(payload)

    def build_request(self, request: ChatRequest, upstream_model: str) -> dict[str, Any]:
        # The model goes in the URL path (gemini_path), never in the body; it only decides
        # whether replayed function calls need a signature placeholder.
        return build_gemini_request(request, upstream_model)

    def parse_response(self, payload: dict[str, Any]) -> ChatResponse:
        return parse_gemini_response(payload, new_id=self._new_id)

    def build_response(self, response: ChatResponse, model: str) -> dict[str, Any]:
        return build_gemini_response(response, model)

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(self._new_id)

    def stream_encoder(self, model: str, *, include_usage: bool) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(model, include_usage=include_usage)

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        return parse_gemini_error(status, body)

    def build_error(self, status: int, error: ErrorInfo) -> dict[str, Any]:
        return build_gemini_error(status, error)
