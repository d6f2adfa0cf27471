"""Server-sent events, both ways: an incremental parser and an event encoder.

The parser follows the WHATWG event-stream rules the providers rely on: lines end with
`\\n`, `\\r\\n` or `\\r`; `:` starts a comment (keep-alives); `data` lines of one event
are joined with `\\n`; a blank line dispatches. Bytes may be split anywhere, so the
incomplete rest waits in a buffer, and `finish()` dispatches a last event that has no
blank line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser", "sse_event"]


@dataclass(slots=True, frozen=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        out: list[SSEEvent] = []
        # Providers end lines with LF alone: then whole events are cut out at their blank
        # line and only an incomplete event waits. Any CR takes the line-by-line path.
        start = self._lines(buf, out) if buf.find(b"\r") >= 0 else self._events(buf, out)
        self._buf = buf[start:]
        return out

    def finish(self) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        rest, self._buf = self._buf, b""
        if rest:
            for line in rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
                self._line(line, out)
        self._dispatch(out)
        return out

    def _events(self, buf: bytes, out: list[SSEEvent]) -> int:
        """Complete LF-terminated events in `buf`; returns where the rest starts."""
        start = 0
        line = self._line
        while (end := buf.find(b"\n\n", start)) >= 0:
            block = buf[start:end]
            if block[:6] == b"data: " and not self._data and b"\n" not in block:
                # The usual event, one data line: no line splitting, no state.
                out.append(SSEEvent(self._event, block[6:].decode("utf-8", "replace")))
                self._event = None
            else:
                for text in block.split(b"\n"):
                    line(text, out)
                self._dispatch(out)
            start = end + 2
        return start

    def _lines(self, buf: bytes, out: list[SSEEvent]) -> int:
        """Complete lines in `buf`, whatever their ending; returns where the rest starts."""
        start = 0
        size = len(buf)
        while start < size:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl >= 0 else size)
            if cr >= 0:
                if cr == size - 1:
                    break  # a lone trailing CR may be the first half of CRLF
                end, nxt = cr, cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif nl >= 0:
                end, nxt = nl, nl + 1
            else:
                break
            self._line(buf[start:end], out)
            start = nxt
        return start

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(out)
            return
        if line[:1] == b":":
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")

    def _dispatch(self, out: list[SSEEvent]) -> None:
        data = self._data
        if data:
            # Decoded once per event (a newline byte is never inside a UTF-8 character).
            out.append(SSEEvent(self._event, b"\n".join(data).decode("utf-8", "replace")))
            self._data = []
        self._event = None


def sse_event(data: bytes, event: str | None = None) -> bytes:
    """One event on the wire; `data` must be single-line (compact JSON is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
