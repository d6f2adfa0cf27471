"""OpenAI chat-completion chunk streams: decode an upstream's, encode the caller's."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from .ir import (
    ErrorInfo,
    ErrorKind,
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
from .openai_wire import (
    error_type,
    finish_reason,
    stop_reason,
    stream_error,
    usage_from_openai,
    usage_to_openai,
)
from .sse import SSEEvent, SSEParser, sse_event

__all__ = ["OpenAIStreamDecoder", "OpenAIStreamEncoder"]

_DONE = b"data: [DONE]\n\n"


class OpenAIStreamDecoder:
    """Chunks -> IR events. Tool calls are keyed by the chunk's `index`; a new `id` at an
    index already used starts a new call (servers that number every call 0)."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._started = False
        self._ended = False
        self._calls: dict[int, tuple[int, str]] = {}  # wire index -> (ordinal, id)
        self._last_index = 0
        self._count = 0

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._decode(self._sse.feed(chunk))

    def finish(self) -> list[StreamEvent]:
        return self._decode(self._sse.finish())

    def _decode(self, events: list[SSEEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            data = event.data.strip()
            if data == "[DONE]" or not data:
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                self._fail(ErrorInfo(ErrorKind.API_ERROR, "upstream sent a malformed stream event"), out)
            elif obj.get("error"):
                self._fail(stream_error(obj), out)
            else:
                self._chunk(obj, out)
        return out

    def _fail(self, error: ErrorInfo, out: list[StreamEvent]) -> None:
        if not self._ended:
            self._ended = True
            out.append(StreamEnd(StopReason.ERROR, error=error))

    def _chunk(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        if not self._started:
            self._started = True
            out.append(MessageStart(id=str(obj.get("id") or ""), model=str(obj.get("model") or "")))
        choices = obj.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta")
            if isinstance(delta, dict):
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    out.append(ThinkingDelta(reasoning))
                content = delta.get("content")
                if isinstance(content, str) and content:
                    out.append(TextDelta(content))
                calls = delta.get("tool_calls")
                if isinstance(calls, list):
                    for call in calls:
                        if isinstance(call, dict):
                            self._tool_call(call, out)
            finish = choice.get("finish_reason")
            if finish and not self._ended:
                self._ended = True
                out.append(StreamEnd(stop_reason(finish)))
        usage = obj.get("usage")
        if isinstance(usage, dict):
            out.append(UsageUpdate(usage_from_openai(usage)))

    def _tool_call(self, call: dict[str, Any], out: list[StreamEvent]) -> None:
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        index = call.get("index")
        if not isinstance(index, int):  # servers that omit it: a new id is a new call
            known = {entry[1] for entry in self._calls.values()}
            new = call_id is not None and call_id not in known
            index = (max(self._calls, default=-1) + 1) if new else self._last_index
        self._last_index = index
        raw_fn = call.get("function")
        fn: dict[str, Any] = raw_fn if isinstance(raw_fn, dict) else {}
        entry = self._calls.get(index)
        if entry is None or (call_id is not None and call_id != entry[1]):
            ordinal = self._count
            self._count += 1
            entry = (ordinal, call_id or f"call_{ordinal}")
            self._calls[index] = entry
            name = fn.get("name")
            out.append(ToolCallStart(ordinal, entry[1], name if isinstance(name, str) else ""))
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(ToolCallDelta(entry[0], arguments))


class OpenAIStreamEncoder:
    """IR events -> `chat.completion.chunk` SSE: a role chunk first, content / reasoning /
    tool-call chunks, the finish chunk, then (when asked) the usage chunk and `[DONE]`."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._started = False
        self._ended = False
        self._failed = False
        self._usage: TokenUsage | None = None

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, MessageStart):
            if event.id:
                self._id = event.id
            if event.usage is not None:
                self._usage = event.usage
            return self._start()
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return b""
        if isinstance(event, ThinkingSignature) or self._ended:
            return b""  # OpenAI's format has no place for a thinking signature
        if isinstance(event, TextDelta):
            return self._delta({"content": event.text}) if event.text else b""
        if isinstance(event, ThinkingDelta):
            return self._delta({"reasoning_content": event.text}) if event.text else b""
        if isinstance(event, ToolCallStart):
            call = {"index": event.index, "id": event.id, "type": "function"}
            call["function"] = {"name": event.name, "arguments": ""}
            return self._delta({"tool_calls": [call]})
        if isinstance(event, ToolCallDelta):
            return self._delta(
                {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
            )
        self._ended = True
        if event.error is not None:
            self._failed = True
            err = event.error
            body = {
                "error": {
                    "message": err.message,
                    "type": error_type(err.kind),
                    "param": None,
                    "code": err.code,
                }
            }
            return self._start() + sse_event(orjson.dumps(body))
        return self._delta({}, finish_reason(event.stop_reason))

    def finish(self) -> bytes:
        out = self._start() if not self._failed else b""
        if self._include_usage and self._usage is not None and not self._failed:
            out += self._frame([], usage=usage_to_openai(self._usage))
        return out + _DONE

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._frame([self._choice({"role": "assistant", "content": ""})])

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._start() + self._frame([self._choice(delta, finish)])

    @staticmethod
    def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def _frame(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return sse_event(orjson.dumps(chunk))
