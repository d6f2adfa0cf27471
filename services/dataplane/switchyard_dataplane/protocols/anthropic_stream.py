"""Anthropic Messages event streams: decode an upstream's, encode the caller's.

The encoder must write a valid block sequence (start, deltas, stop; one block open at a
time, indexes in order) from IR events that may interleave: an OpenAI upstream can send
text while a tool call's arguments are still streaming, or argument fragments of several
calls in turn. A block is therefore switched only when the open one is finished - text and
thinking always are, a tool call once its arguments parse as a JSON object - and events
for other blocks wait in order until then (at the latest until the stream ends).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from .anthropic_wire import (
    error_body,
    error_info,
    merge_usage,
    stop_reason,
    stop_reason_wire,
    usage_from_anthropic,
    usage_to_anthropic,
)
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
from .sse import SSEEvent, SSEParser, sse_event

__all__ = ["AnthropicStreamDecoder", "AnthropicStreamEncoder"]


class AnthropicStreamDecoder:
    def __init__(self) -> None:
        self._sse = SSEParser()
        self._tools: dict[int, int] = {}  # block index -> tool-call ordinal
        self._usage: dict[str, Any] = {}
        self._ended = False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._decode(self._sse.feed(chunk))

    def finish(self) -> list[StreamEvent]:
        return self._decode(self._sse.finish())

    def _decode(self, events: list[SSEEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                self._end(StreamEnd(StopReason.ERROR, error=_MALFORMED), out)
                continue
            try:
                self._event(data, out)
            except (AttributeError, KeyError, TypeError, ValueError):
                self._end(StreamEnd(StopReason.ERROR, error=_MALFORMED), out)
        return out

    def _end(self, end: StreamEnd, out: list[StreamEvent]) -> None:
        if not self._ended:
            self._ended = True
            out.append(end)

    def _event(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data["delta"]
            dtype = delta.get("type")
            if dtype == "text_delta" and delta["text"]:
                out.append(TextDelta(delta["text"]))
            elif dtype == "input_json_delta" and delta["partial_json"]:
                ordinal = self._tools.get(data["index"])
                if ordinal is not None:
                    out.append(ToolCallDelta(ordinal, delta["partial_json"]))
            elif dtype == "thinking_delta" and delta["thinking"]:
                out.append(ThinkingDelta(delta["thinking"]))
            elif dtype == "signature_delta" and delta["signature"]:
                out.append(ThinkingSignature(delta["signature"]))
        elif kind == "content_block_start":
            self._block_start(data["index"], data["content_block"], out)
        elif kind == "message_start":
            message = data["message"]
            usage = message.get("usage")
            self._usage = dict(usage) if isinstance(usage, dict) else {}
            out.append(
                MessageStart(
                    id=str(message.get("id") or ""),
                    model=str(message.get("model") or ""),
                    usage=usage_from_anthropic(self._usage) if self._usage else None,
                )
            )
        elif kind == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):
                out.append(UsageUpdate(merge_usage(self._usage, usage)))
            delta = data.get("delta") or {}
            if delta.get("stop_reason") is not None:
                self._end(StreamEnd(stop_reason(delta["stop_reason"]), delta.get("stop_sequence")), out)
        elif kind == "error":
            self._end(StreamEnd(StopReason.ERROR, error=error_info(data.get("error"))), out)

    def _block_start(self, index: int, block: dict[str, Any], out: list[StreamEvent]) -> None:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            out.append(TextDelta(block["text"]))
        elif kind == "thinking":
            if block.get("thinking"):
                out.append(ThinkingDelta(block["thinking"]))
            if block.get("signature"):
                out.append(ThinkingSignature(block["signature"]))
        elif kind == "tool_use":
            ordinal = len(self._tools)
            self._tools[index] = ordinal
            out.append(ToolCallStart(ordinal, str(block["id"]), str(block["name"])))
            if block.get("input"):
                out.append(ToolCallDelta(ordinal, orjson.dumps(block["input"]).decode()))


_MALFORMED = ErrorInfo(ErrorKind.API_ERROR, "upstream sent a malformed stream event")


@dataclass(slots=True)
class _Block:
    kind: str  # "text" | "thinking" | "tool_use"
    start: dict[str, Any]
    queued: list[dict[str, Any]] = field(default_factory=list)  # deltas not yet written
    arguments: list[str] = field(default_factory=list)
    index: int | None = None
    closed: bool = False

    def finished(self) -> bool:
        if self.kind != "tool_use":
            return True
        try:
            return isinstance(orjson.loads("".join(self.arguments)), dict)
        except orjson.JSONDecodeError:
            return False


class AnthropicStreamEncoder:
    """IR events -> Anthropic SSE: message_start, content blocks, message_delta (stop
    reason and usage, written at the end since OpenAI upstreams send usage after the
    finish), message_stop. Anthropic streams always carry usage."""

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        self._model = model
        self._id = f"msg_{uuid.uuid4().hex}"
        self._usage: TokenUsage | None = None
        self._started = False
        self._open: _Block | None = None
        self._pending: list[_Block] = []
        self._tools: dict[int, _Block] = {}
        self._next_index = 0
        self._end: StreamEnd | None = None

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
        if self._end is not None:
            return b""
        out = [self._start()]
        if isinstance(event, TextDelta):
            if event.text:
                self._route("text", {"type": "text_delta", "text": event.text}, out)
        elif isinstance(event, ThinkingDelta):
            if event.text:
                self._route("thinking", {"type": "thinking_delta", "thinking": event.text}, out)
        elif isinstance(event, ThinkingSignature):
            self._route("thinking", {"type": "signature_delta", "signature": event.signature}, out)
        elif isinstance(event, ToolCallStart):
            start = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            block = _Block("tool_use", start)
            self._tools[event.index] = block
            self._pending.append(block)
            self._advance(out)
        elif isinstance(event, ToolCallDelta):
            self._tool_delta(event, out)
        else:
            self._end = event
            self._flush(out)
            if event.error is not None:
                out.append(sse_event(orjson.dumps(error_body(event.error)), "error"))
        return b"".join(out)

    def finish(self) -> bytes:
        out = [self._start()]
        if self._end is not None and self._end.error is not None:
            return out[0]
        self._flush(out)
        end = self._end or StreamEnd(StopReason.END_TURN)
        usage = usage_to_anthropic(self._usage)
        delta = {"stop_reason": stop_reason_wire(end.stop_reason), "stop_sequence": end.stop_sequence}
        out.append(self._event("message_delta", {"delta": delta, "usage": usage}))
        out.append(self._event("message_stop", {}))
        return b"".join(out)

    # --- blocks ----------------------------------------------------------------------

    def _route(self, kind: str, delta: dict[str, Any], out: list[bytes]) -> None:
        """Text and thinking: continue the open block of that kind, else queue."""
        if self._open is not None and self._open.kind == kind and not self._pending:
            out.append(self._delta(self._open, delta))
            return
        if self._pending and self._pending[-1].kind == kind:
            self._pending[-1].queued.append(delta)
        else:
            start: dict[str, Any] = (
                {"type": "text", "text": ""}
                if kind == "text"
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            self._pending.append(_Block(kind, start, [delta]))
        self._advance(out)

    def _tool_delta(self, event: ToolCallDelta, out: list[bytes]) -> None:
        block = self._tools.get(event.index)
        if block is None:  # arguments for a call never announced: announce it
            self._tools[event.index] = block = _Block(
                "tool_use", {"type": "tool_use", "id": f"toolu_{event.index}", "name": "", "input": {}}
            )
            self._pending.append(block)
        if block.closed:
            return  # the call's JSON was already complete: nothing valid can follow
        block.arguments.append(event.arguments)
        delta = {"type": "input_json_delta", "partial_json": event.arguments}
        if block is self._open:
            out.append(self._delta(block, delta))
        else:
            block.queued.append(delta)
        self._advance(out)

    def _advance(self, out: list[bytes]) -> None:
        while self._pending and (self._open is None or self._open.finished()):
            self._close(out)
            self._open_block(self._pending.pop(0), out)

    def _flush(self, out: list[bytes]) -> None:
        while self._pending:
            self._close(out)
            self._open_block(self._pending.pop(0), out)
        self._close(out)

    def _open_block(self, block: _Block, out: list[bytes]) -> None:
        block.index = self._next_index
        self._next_index += 1
        self._open = block
        out.append(self._event("content_block_start", {"index": block.index, "content_block": block.start}))
        out.extend(self._delta(block, d) for d in block.queued)
        block.queued.clear()

    def _close(self, out: list[bytes]) -> None:
        if self._open is not None:
            self._open.closed = True
            out.append(self._event("content_block_stop", {"index": self._open.index}))
            self._open = None

    def _delta(self, block: _Block, delta: dict[str, Any]) -> bytes:
        return self._event("content_block_delta", {"index": block.index, "delta": delta})

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_anthropic(self._usage),
        }
        return self._event("message_start", {"message": message})

    @staticmethod
    def _event(kind: str, payload: dict[str, Any]) -> bytes:
        return sse_event(orjson.dumps({"type": kind, **payload}), kind)
