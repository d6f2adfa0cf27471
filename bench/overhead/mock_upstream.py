#!/usr/bin/env python3
"""A fast mock upstream (OpenAI Chat Completions and Anthropic Messages) for the
overhead benchmark.

The benchmark measures what the data plane adds on top of the upstream, so the
upstream has to cost next to nothing: a raw `asyncio.Protocol` HTTP/1.1 server
(keep-alive, pipelining, uvloop when installed) that answers from byte strings
computed once at start-up. No framework, no per-request JSON encoding.

Routes
  POST /v1/chat/completions   JSON completion, or an SSE stream when the body has
                              `"stream": true`: role chunk, N content chunks, finish
                              chunk, a usage chunk when `stream_options.include_usage`,
                              then `data: [DONE]`
  POST /v1/messages           Anthropic `message` JSON, or with `"stream": true` the
                              Messages SSE stream (message_start ... message_stop)
  GET  /v1/models             both models (mock-gpt, mock-claude)
  GET  /health                "ok"
  GET  /stats                 request counters (JSON)
(`/v1` may be left out of every path.)

Options: --port, --chunks N (content chunks per stream), --delay-ms (before the
response / first event), --chunk-delay-ms (between events), --no-uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any, cast

from mock_payloads import CHUNKED_END, SSE_HEAD, Payloads, SseStream, dumps, response

HEADER_LIMIT = 64 * 1024


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.streams = 0
        self.errors = 0
        self.started = time.monotonic()

    def as_json(self) -> bytes:
        return dumps(
            {
                "requests": self.requests,
                "streams": self.streams,
                "errors": self.errors,
                "uptime_s": round(time.monotonic() - self.started, 3),
            }
        )


def stream_flags(body: bytes) -> tuple[bool, bool]:
    """(stream?, include usage chunk?) of a chat or messages request body; cheap when
    not streaming."""
    if b'"stream"' not in body:
        return False, False
    try:
        data = json.loads(body)
    except ValueError:
        return False, False
    if not isinstance(data, dict) or not data.get("stream"):
        return False, False
    options = data.get("stream_options")
    return True, isinstance(options, dict) and bool(options.get("include_usage"))


class MockProtocol(asyncio.Protocol):
    """One connection. Requests are handled in arrival order; while a delayed answer is
    pending (`busy`) further pipelined requests wait in the buffer."""

    def __init__(self, payloads: Payloads, stats: Stats, delay: float, chunk_delay: float) -> None:
        self.p = payloads
        self.stats = stats
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.buf = b""
        self.busy = False
        self.closed = False
        self.close_after = False
        self.continued = False
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def process(self) -> None:
        while not self.busy and not self.closed and self.buf:
            buf = self.buf
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                if len(buf) > HEADER_LIMIT:
                    self.fail()
                return
            head = buf[:head_end].lower()
            line_end = head.find(b"\r\n")
            parts = (head[:line_end] if line_end >= 0 else head).split(b" ")
            if len(parts) < 3:
                self.fail()
                return
            method, path = parts[0].upper(), parts[1].split(b"?", 1)[0]
            body_start = head_end + 4
            length = 0
            i = head.find(b"\r\ncontent-length:")
            if i >= 0:
                j = head.find(b"\r\n", i + 17)
                try:
                    length = int(head[i + 17 : j if j >= 0 else None])
                except ValueError:
                    self.fail()
                    return
            elif b"\r\ntransfer-encoding:" in head and b"chunked" in head:
                body, consumed = parse_chunked(buf, body_start)
                if body is None:
                    self.maybe_continue(head)
                    return
                self.buf = buf[consumed:]
                self.close_after = b"\r\nconnection: close" in head
                self.handle(method, path, body)
                continue
            if len(buf) < body_start + length:
                self.maybe_continue(head)
                return
            body = buf[body_start : body_start + length]
            self.buf = buf[body_start + length :]
            self.close_after = b"\r\nconnection: close" in head
            self.handle(method, path, body)

    def maybe_continue(self, head: bytes) -> None:
        # curl and some clients wait for this before sending a large body.
        if not self.continued and b"\r\nexpect: 100-continue" in head:
            self.continued = True
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def fail(self) -> None:
        self.stats.errors += 1
        self.write(self.p.bad_request)
        if self.transport is not None:
            self.transport.close()
        self.closed = True

    def handle(self, method: bytes, path: bytes, body: bytes) -> None:
        self.stats.requests += 1
        self.continued = False
        if path.startswith(b"/v1/"):
            path = path[3:]
        p = self.p
        if method == b"POST" and path == b"/chat/completions":
            stream, usage = stream_flags(body)
            if stream:
                self.stats.streams += 1
                self.send_stream(p.chat_stream_usage if usage else p.chat_stream)
            else:
                self.send(p.chat)
        elif method == b"POST" and path == b"/messages":
            stream, _ = stream_flags(body)
            if stream:
                self.stats.streams += 1
                self.send_stream(p.message_stream)
            else:
                self.send(p.message)
        elif method == b"GET" and path == b"/models":
            self.finish(p.models)
        elif method == b"GET" and path == b"/health":
            self.finish(p.health)
        elif method == b"GET" and path == b"/stats":
            self.finish(response("200 OK", self.stats.as_json()))
        else:
            self.finish(p.not_found)

    def finish(self, data: bytes) -> None:
        self.write(data)
        if self.close_after and self.transport is not None:
            self.transport.close()
            self.closed = True

    def send(self, data: bytes) -> None:
        if self.delay <= 0:
            self.finish(data)
            return
        self.busy = True
        self.loop.call_later(self.delay, self.send_later, data)

    def send_later(self, data: bytes) -> None:
        self.finish(data)
        self.resume()

    def resume(self) -> None:
        self.busy = False
        if self.buf and not self.closed:
            self.process()

    def send_stream(self, stream: SseStream) -> None:
        if self.delay <= 0 and self.chunk_delay <= 0:
            self.finish(stream.whole)
            return
        self.busy = True
        if self.chunk_delay <= 0:
            self.loop.call_later(self.delay, self.send_later, stream.whole)
            return
        # Headers at once, like real providers; events then trickle in.
        self.write(SSE_HEAD)
        self.loop.call_later(self.delay, self.stream_step, stream.events, 0)

    def stream_step(self, events: list[bytes], index: int) -> None:
        if self.closed:
            self.resume()
            return
        self.write(events[index])
        if index + 1 < len(events):
            self.loop.call_later(self.chunk_delay, self.stream_step, events, index + 1)
        else:
            self.finish(CHUNKED_END)
            self.resume()


def parse_chunked(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    """Decode a chunked request body starting at `pos`: (body, end offset), or (None, 0)
    while incomplete."""
    parts: list[bytes] = []
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None, 0
        try:
            size = int(buf[pos:line_end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            return b"", len(buf)
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None, 0
            return b"".join(parts), trailer_end + 4
        start = line_end + 2
        if len(buf) < start + size + 2:
            return None, 0
        parts.append(buf[start : start + size])
        pos = start + size + 2


async def serve(host: str, port: int, payloads: Payloads, delay: float, chunk_delay: float) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    server = await loop.create_server(
        lambda: MockProtocol(payloads, stats, delay, chunk_delay),
        host,
        port,
        backlog=4096,
        reuse_address=True,
    )
    print(f"mock upstream on http://{host}:{port} pid={os.getpid()}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before the answer / first event")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between stream events")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args(argv)
    run: Any = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            run = uvloop.run
        except ImportError:
            pass
    payloads = Payloads(args.chunks)
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port, payloads, args.delay_ms / 1000, args.chunk_delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
