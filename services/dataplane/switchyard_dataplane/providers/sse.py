"""Server-sent-event framing shared by the stream relays: find complete events in a
buffer, read the JSON of an event's `data:` line, spot an upstream's error event, and
the relay skeleton built on them. Pure, no I/O."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from ..protocols.ir import TokenUsage

__all__ = ["SseRelay", "event_error", "event_json", "next_event_end"]


def next_event_end(buf: bytes | bytearray, start: int) -> tuple[int, int]:
    """(end of the event, start of the next one) or (-1, -1) if no complete event yet."""
    lf = buf.find(b"\n\n", start)
    crlf = buf.find(b"\r\n\r\n", start) if b"\r" in buf else -1
    if crlf != -1 and (lf == -1 or crlf < lf):
        return crlf, crlf + 4
    if lf != -1:
        return lf, lf + 2
    return -1, -1


def event_json(event: bytes) -> Any:
    """The JSON of the event's first `data:` line; None for `[DONE]`, no data or bad JSON."""
    for line in event.splitlines():
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data and data != b"[DONE]":
                try:
                    return orjson.loads(data)
                except orjson.JSONDecodeError:
                    return None
    return None


def event_error(event: bytes) -> str | None:
    """The message of an error event, else None. Every upstream protocol reports a
    failure after its success status the same way: a data object with a top-level
    `error` (OpenAI `{"error": {...}}`, Anthropic `event: error` with
    `{"type": "error", "error": {...}}`, Gemini `{"error": {"code", "message", ...}}`)."""
    obj = event_json(event)
    if not isinstance(obj, dict) or not obj.get("error"):
        return None
    err = obj["error"]
    message = err.get("message") if isinstance(err, dict) else err
    return str(message or "upstream reported an error")


class SseRelay:
    """The skeleton of a passthrough StreamRelay: finds complete events, reads usage from
    those holding the protocol's `usage_marker` (`_note_usage`), notes the first error
    event, and passes every byte on as soon as it arrives.

    With `strip_usage`, events `_note_usage` calls usage-only are dropped: complete
    events are then passed on as they complete and only a partial trailing event
    (useless to an SSE client anyway) waits for its end.
    """

    __slots__ = ("_pending", "_strip", "error", "usage")
    # Bytes every event carrying usage contains: no other event is parsed for usage.
    usage_marker: ClassVar[bytes]
    # Whether an event with the marker may still be an error event; when not, such an
    # event is not searched for one.
    marker_in_errors: ClassVar[bool] = False

    def __init__(self, *, strip_usage: bool = False) -> None:
        self._strip = strip_usage
        self._pending = b""
        self.usage: TokenUsage | None = None
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        buf = self._pending + chunk if self._pending else chunk
        marker = self.usage_marker
        kept: list[bytes] | None = None
        pos = emitted = 0
        while True:
            end, nxt = next_event_end(buf, pos)
            if end < 0:
                break
            event = buf[pos:end]
            has_usage = marker in event
            if has_usage and self._note_usage(event) and self._strip:
                if kept is None:
                    kept = []
                kept.append(buf[emitted:pos])
                emitted = nxt
            elif (self.marker_in_errors or not has_usage) and b'"error"' in event and self.error is None:
                self.error = event_error(event)
            pos = nxt
        self._pending = buf[pos:]
        if not self._strip:
            return chunk
        if kept is None:
            return buf[:pos]
        kept.append(buf[emitted:pos])
        return b"".join(kept)

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        if self.usage_marker in rest:
            self._note_usage(rest)
        elif b'"error"' in rest and self.error is None:
            self.error = event_error(rest)
        return rest if self._strip else b""

    def _note_usage(self, event: bytes) -> bool:
        """Record the event's usage; True if the event carries nothing else (a chunk
        that may be dropped)."""
        raise NotImplementedError
