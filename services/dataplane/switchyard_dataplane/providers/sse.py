"""Server-sent-event framing shared by the stream relays: find complete events in a
buffer, read the JSON of an event's `data:` line and spot an upstream's error event.
Pure, no I/O."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["event_error", "event_json", "next_event_end"]


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
