"""Gemini `streamGenerateContent?alt=sse` streams <-> IR stream events.

Each SSE event is a whole `GenerateContentResponse` holding the next slice of
`candidates[0].content.parts`: text, thought text, or complete function calls (Gemini
never splits a call's arguments), `finishReason` on the last chunk and
`usageMetadata` (cumulative) on some or all chunks.

The decoder emits `ToolCallStart` + one `ToolCallDelta` with the whole JSON per call,
and, when a chunk carries `finishReason`, the latest usage *before* `StreamEnd` so
encoders that put usage on their closing event (Anthropic `message_delta`) have it.
Signatures follow the rules in gemini_parts: a signature on a non-thought part becomes
a `ThinkingSignature` event just before that part's events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .gemini_parts import arguments_object, is_synthetic_id
from .gemini_response import (
    build_gemini_error,
    finish_reason_to_gemini,
    gemini_error_status,
    new_response_id,
    parse_gemini_error,
    stop_reason_from_gemini,
    usage_from_gemini,
    usage_to_gemini,
)
from .ir import (
    ErrorInfo,
    MessageStart,
    StopReason,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    TokenUsage,
    ToolCallDelta,
    ToolCallStart,
    UsageUpdate,
)
from .sse import SSEParser

__all__ = ["GeminiStreamDecoder", "GeminiStreamEncoder"]


class GeminiStreamDecoder:
    """Upstream Gemini SSE bytes -> IR events."""

    def __init__(self, new_id: Callable[[], str]) -> None:
        self._sse = SSEParser()
        self._new_id = new_id
        self._started = False
        self._ended = False
        self._tool_calls = 0
        self._usage: TokenUsage | None = None
        self._sent_usage: TokenUsage | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.feed(chunk):
            self._event(sse.data, events)
        return events

    def finish(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.finish():
            self._event(sse.data, events)
        if self._started and not self._ended:
            # The upstream closed without a finishReason: the answer is cut short.
            self._close(StopReason.ERROR, events)
        return events

    def _event(self, data: str, events: list[StreamEvent]) -> None:
        if data.strip() == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            return
        if isinstance(chunk, list):  # some proxies relay the non-SSE array form
            for item in chunk:
                if isinstance(item, dict):
                    self._chunk(item, events)
        elif isinstance(chunk, dict):
            self._chunk(chunk, events)

    def _chunk(self, chunk: dict[str, Any], events: list[StreamEvent]) -> None:
        if not self._started:
            self._started = True
            response_id = chunk.get("responseId")
            model = chunk.get("modelVersion")
            first = usage_from_gemini(chunk.get("usageMetadata"))
            events.append(
                MessageStart(
                    id=response_id if isinstance(response_id, str) and response_id else new_response_id(),
                    model=model if isinstance(model, str) else "",
                    # The prompt is counted from the first chunk on; output is not known yet.
                    usage=None
                    if first is None
                    else TokenUsage(input_tokens=first.input_tokens, cached_tokens=first.cached_tokens),
                )
            )
        if isinstance(chunk.get("error"), dict):
            if not self._ended:
                status = chunk["error"].get("code")
                error = parse_gemini_error(status if isinstance(status, int) else 500, _dumps(chunk))
                self._close(StopReason.ERROR, events, error)
            return
        usage = usage_from_gemini(chunk.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        candidates = chunk.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        finish: Any = None
        if isinstance(candidate, dict):
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list) and not self._ended:
                for part in parts:
                    if isinstance(part, dict):
                        self._part(part, events)
            finish = candidate.get("finishReason")
        reason = stop_reason_from_gemini(finish, has_tool_calls=self._tool_calls > 0)
        feedback = chunk.get("promptFeedback")
        if candidate is None and isinstance(feedback, dict) and feedback.get("blockReason"):
            reason = StopReason.CONTENT_FILTER  # the prompt itself was blocked
        if not self._ended and reason is not None:
            self._close(reason, events)
        elif self._ended and self._usage is not None and self._usage != self._sent_usage:
            self._sent_usage = self._usage
            events.append(UsageUpdate(self._usage))

    def _part(self, part: dict[str, Any], events: list[StreamEvent]) -> None:
        signature = part.get("thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        text = part.get("text")
        if isinstance(text, str) and part.get("thought") is True:
            if text:
                events.append(ThinkingDelta(text))
            if signature:
                events.append(ThinkingSignature(signature))
            return
        if signature:
            events.append(ThinkingSignature(signature))
        if isinstance(text, str):
            if text:
                events.append(TextDelta(text))
            return
        call = part.get("functionCall")
        if isinstance(call, dict) and isinstance(call.get("name"), str) and call["name"]:
            call_id = call.get("id")
            args = call.get("args")
            index = self._tool_calls
            self._tool_calls += 1
            events.append(
                ToolCallStart(
                    index=index,
                    id=call_id if isinstance(call_id, str) and call_id else self._new_id(),
                    name=call["name"],
                )
            )
            arguments = json.dumps(args if isinstance(args, dict) else {}, ensure_ascii=False)
            events.append(ToolCallDelta(index=index, arguments=arguments))
        # inlineData (generated images), executableCode, ...: nothing in the IR stream.

    def _close(
        self, reason: StopReason | None, events: list[StreamEvent], error: ErrorInfo | None = None
    ) -> None:
        self._ended = True
        if self._usage is not None:
            self._sent_usage = self._usage
            events.append(UsageUpdate(self._usage))
        events.append(StreamEnd(stop_reason=reason, error=error))


class GeminiStreamEncoder:
    """IR events -> Gemini SSE chunks for a Gemini caller.

    Function-call arguments arrive in fragments from other protocols; a call is written
    whole once the next non-argument event shows it is complete. The closing chunk
    (finishReason + usageMetadata) is written by `finish()`, since usage may follow
    `StreamEnd` in the IR."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = new_response_id()
        self._calls: dict[int, tuple[str, str, list[str]]] = {}
        self._signature: str | None = None
        self._last_thinking = False
        self._stop: StopReason | None = None
        self._usage: TokenUsage | None = None
        self._done = False

    def encode(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, MessageStart):
            self._id = event.id or self._id
            if event.usage is not None:
                self._usage = event.usage
            return b""
        if isinstance(event, ToolCallStart):
            self._calls[event.index] = (event.id, event.name, [])
            return b""
        if isinstance(event, ToolCallDelta):
            if event.index in self._calls:
                self._calls[event.index][2].append(event.arguments)
            return b""
        out = self._flush_calls()
        if isinstance(event, TextDelta):
            out += self._chunk([self._signed({"text": event.text})]) if event.text else b""
            self._last_thinking = False
        elif isinstance(event, ThinkingDelta):
            if event.text:
                out += self._chunk([self._signed({"text": event.text, "thought": True})])
                self._last_thinking = True
        elif isinstance(event, ThinkingSignature):
            if self._last_thinking:
                # Signs the thoughts just written: close them with a signed thought part.
                out += self._chunk([{"text": "", "thought": True, "thoughtSignature": event.signature}])
                self._last_thinking = False
            else:
                self._signature = event.signature  # belongs to the next part
        elif isinstance(event, UsageUpdate):
            self._usage = event.usage
        elif isinstance(event, StreamEnd):
            self._stop = event.stop_reason
            if event.error is not None:
                # Gemini reports a failure mid-stream as an event holding its error body.
                self._done = True
                status = gemini_error_status(event.error.kind)
                out += b"data: " + _dumps(build_gemini_error(status, event.error)) + b"\r\n\r\n"
        return out

    def finish(self) -> bytes:
        if self._done:
            return b""
        out = self._flush_calls()
        self._done = True
        part: dict[str, Any] = self._signed({"text": ""})
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}}
        finish = finish_reason_to_gemini(self._stop)
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        return out + self._chunk([part], candidate=candidate, last=True)

    def _signed(self, part: dict[str, Any]) -> dict[str, Any]:
        if self._signature is not None:
            part["thoughtSignature"] = self._signature
            self._signature = None
        return part

    def _flush_calls(self) -> bytes:
        if not self._calls:
            return b""
        parts = []
        for index in sorted(self._calls):
            call_id, name, fragments = self._calls[index]
            call: dict[str, Any] = {"name": name, "args": arguments_object("".join(fragments), strict=False)}
            if call_id and not is_synthetic_id(call_id):
                call = {"id": call_id, **call}
            parts.append(self._signed({"functionCall": call}))
        self._calls.clear()
        self._last_thinking = False
        return self._chunk(parts)

    def _chunk(
        self, parts: list[dict[str, Any]], *, candidate: dict[str, Any] | None = None, last: bool = False
    ) -> bytes:
        body: dict[str, Any] = {
            "candidates": [candidate or {"content": {"parts": parts, "role": "model"}, "index": 0}]
        }
        if last and self._include_usage and self._usage is not None:
            body["usageMetadata"] = usage_to_gemini(self._usage)
        body["modelVersion"] = self._model
        body["responseId"] = self._id
        return b"data: " + _dumps(body) + b"\r\n\r\n"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
