"""The one place that composes codecs: caller protocol -> IR -> upstream protocol.

Used only when the caller's protocol differs from the upstream's (same-protocol calls pass
through untouched). Codecs raise `InvalidRequest` for a caller request they cannot
understand and `UpstreamUnreachable` for an upstream answer they cannot read.

Known losses when translating (each protocol lacks the other's field):
- OpenAI callers never see Anthropic thinking signatures or redacted thinking; reasoning
  they replay comes back unsigned and is left out of Anthropic requests.
- OpenAI `finish_reason: stop` cannot say which stop sequence matched: Anthropic callers
  get `end_turn` with no `stop_sequence`.
- OpenAI `temperature` above 1 is clamped to Anthropic's 1; with thinking on, Anthropic
  forbids temperature / top_k (dropped) and forcing a tool (thinking dropped instead).
- `top_k` is not sent to OpenAI-compatible upstreams (OpenAI rejects it).
- System / developer turns in the middle of an OpenAI conversation join the one system
  prompt; images a tool returned go to OpenAI in a user turn after the tool messages.
- `n`, `logprobs`, `response_format`, `seed`, cache_control marks and other
  protocol-only fields are not translated (kept in `ChatRequest.extra`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchyard_common.errors import InvalidRequest

from . import anthropic_wire, openai_wire
from .anthropic_messages import AnthropicMessagesCodec
from .checks import bad_upstream
from .gemini import GeminiCodec
from .gemini_response import gemini_error_status
from .ir import (
    ChatRequest,
    Codec,
    ErrorInfo,
    ErrorKind,
    MessageStart,
    StopReason,
    StreamEnd,
    StreamEvent,
    TokenUsage,
    UsageUpdate,
)
from .openai_chat import OpenAIChatCodec
from .reasoning import budget_to_effort, effort_to_budget

__all__ = [
    "CODECS",
    "StreamTranslator",
    "budget_to_effort",
    "build_request",
    "effort_to_budget",
    "error_status",
    "parse_request",
    "translate_error",
    "translate_request",
    "translate_response",
]

CODECS: dict[str, Codec] = {
    "openai": OpenAIChatCodec(),
    "anthropic": AnthropicMessagesCodec(),
    "gemini": GeminiCodec(),
}


def _codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known: {sorted(CODECS)}") from None


def translate_request(src: str, dst: str, payload: Any, upstream_model: str) -> dict[str, Any]:
    """A caller's request body (protocol `src`) as the upstream's (protocol `dst`)."""
    return build_request(dst, parse_request(src, payload), upstream_model)


def parse_request(src: str, payload: Any) -> ChatRequest:
    """The first half of `translate_request`, for callers that edit the IR in between
    (the data plane inlines URL images for Gemini)."""
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return _codec(src).parse_request(payload)


def build_request(dst: str, request: ChatRequest, upstream_model: str) -> dict[str, Any]:
    """The second half of `translate_request`."""
    return _codec(dst).build_request(request, upstream_model)


def translate_response(src_upstream: str, dst_caller: str, payload: Any, model: str) -> dict[str, Any]:
    """An upstream's non-streaming answer as the caller's; `model` is the name the caller
    asked for."""
    if not isinstance(payload, dict):
        raise bad_upstream("response")
    response = _codec(src_upstream).parse_response(payload)
    return _codec(dst_caller).build_response(response, model)


def error_status(protocol: str, kind: ErrorKind, upstream_status: int | None = None) -> int:
    """The status `protocol`'s API uses for `kind`; a generic server error keeps the
    upstream's own 5xx (502, 500, ...)."""
    if kind is ErrorKind.API_ERROR and upstream_status is not None and 500 <= upstream_status < 600:
        return upstream_status
    if protocol == "anthropic":
        return anthropic_wire.error_status(kind)
    if protocol == "openai":
        return openai_wire.error_status(kind)
    return gemini_error_status(kind)


def translate_error(
    src_upstream: str, dst_caller: str, status: int, body: bytes
) -> tuple[int, dict[str, Any]]:
    """An upstream's error answer as (status, body) in the caller's protocol."""
    info = _codec(src_upstream).parse_error(status, body)
    out_status = error_status(dst_caller, info.kind, status)
    return out_status, _codec(dst_caller).build_error(out_status, info)


class StreamTranslator:
    """Upstream stream bytes in, caller stream bytes out, event by event: whatever one
    `feed` decodes is encoded and returned at once, so the caller's first byte leaves
    as soon as the upstream's first event is complete.

    `usage` is the last usage the upstream reported (for metering), `stop_reason` and
    `error` how the upstream ended.

    `start_usage`, for callers whose stream opens with the prompt's token count
    (Anthropic's `message_start`), gives a figure (a local estimate) for when the
    upstream reports usage only at its end (OpenAI, Gemini): called at most once, it
    fills the opening event only; `usage` and the closing figures stay the upstream's."""

    def __init__(
        self,
        src_upstream: str,
        dst_caller: str,
        model: str,
        include_usage: bool,
        *,
        start_usage: Callable[[], TokenUsage] | None = None,
    ) -> None:
        self._decoder = _codec(src_upstream).stream_decoder()
        self._encoder = _codec(dst_caller).stream_encoder(model, include_usage=include_usage)
        self.usage: TokenUsage | None = None
        self.stop_reason: StopReason | None = None
        self.error: ErrorInfo | None = None
        self._finished = False
        self._start_usage = start_usage

    def feed(self, chunk: bytes) -> bytes:
        return self._encode(self._decoder.feed(chunk))

    def finish(self) -> bytes:
        """Closing bytes once the upstream ended (also flushes a last event that had no
        trailing blank line). Call once."""
        if self._finished:
            return b""
        self._finished = True
        out = self._encode(self._decoder.finish())
        if self._start_usage is not None:  # the upstream sent no event at all
            out += self._encode([MessageStart(id="", model="")])
        return out + self._encoder.finish()

    def _open(self, events: list[StreamEvent], out: list[bytes]) -> list[StreamEvent]:
        """Encodes the caller's opening event with the start usage when the upstream's
        first event has no usage; returns the events left to encode. The figure goes to
        the encoder only, never to `usage`."""
        start_usage, self._start_usage = self._start_usage, None
        first = events[0]
        if start_usage is None or (isinstance(first, MessageStart) and first.usage is not None):
            return events
        if isinstance(first, MessageStart):
            out.append(self._encoder.encode(MessageStart(first.id, first.model, start_usage())))
            return events[1:]
        out.append(self._encoder.encode(MessageStart("", "", start_usage())))
        return events

    def _encode(self, events: list[StreamEvent]) -> bytes:
        if not events:
            return b""
        out: list[bytes] = []
        if self._start_usage is not None:
            events = self._open(events, out)
        for event in events:
            if isinstance(event, UsageUpdate | MessageStart) and event.usage is not None:
                self.usage = event.usage
            elif isinstance(event, StreamEnd):
                self.stop_reason = event.stop_reason
                self.error = event.error
            out.append(self._encoder.encode(event))
        return b"".join(out)
