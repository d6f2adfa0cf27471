"""Server-sent-event framing shared by the stream relays: find complete events in a
buffer and read the JSON of an event's `data:` line. Pure, no I/O."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["event_json", "next_event_end"]


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
