"""Publishing to JetStream in windows: many messages, one wait for their PubAcks.

A window's messages are sent back to back, each with `Nats-Msg-Id` and its own reply
subject `<inbox>.<n>` on one wildcard subscription; then the caller waits once, with one
timeout, until all are acknowledged, one is refused, or the connection drops. `n` only
grows, so late acks of an abandoned window never count for a later one.

This is deliberately not `js.publish_async`: it wraps every message's stall wait in
`asyncio.wait_for` (a task and a loop turn each on Python 3.11) unless `wait_stall` is
None, and even then spends a future, a callback, a random token and a JSON decode per
message; this path costs about half the CPU on the event loop the requests share.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from switchyard_common.bus import BusMessage

__all__ = ["AckWindow", "WindowResult", "is_pub_ack"]

# The server writes a PubAck as `{"stream":"NAME", "seq":N...}` and marshals a refusal
# with its "error" member first, so a reply starting like this is a success.
_ACK_PREFIX = b'{"stream":'
# Room for the Nats-Msg-Id header within the server's max_payload.
_HEADER_ROOM = 64


def is_pub_ack(data: bytes) -> bool:
    """Whether a reply to a JetStream publish acknowledges it."""
    if data.startswith(_ACK_PREFIX):
        return True
    try:
        reply = json.loads(data)
    except ValueError:  # e.g. the empty body of a 503 "no responders" status
        return False
    return isinstance(reply, dict) and "error" not in reply and "seq" in reply


@dataclass(slots=True)
class WindowResult:
    # Leading messages that need no retry: acknowledged, or too large ever to publish.
    done: int
    # Why the window ended early: JetStream's refusal or the client's error; None on
    # success or a plain timeout.
    error: str | None = None
    # Messages larger than the server accepts; counted in `done`, never sent.
    oversized: list[BusMessage] = field(default_factory=list)


class AckWindow:
    """Publishes windows on one client. Create one per client; windows run one at a time."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._prefix = ""
        self._base = 0  # reply number of the current window's first message
        self._size = 0
        self._acked = bytearray()
        self._received = 0
        self._error: str | None = None
        self._settled: asyncio.Future[None] | None = None

    async def subscribe(self) -> None:
        """Subscribe to the replies; once per client (the subscription survives reconnects)."""
        if self._prefix:
            return
        prefix = f"{self._nc.new_inbox()}."
        await self._nc.subscribe(f"{prefix}*", cb=self._on_reply)
        self._prefix = prefix

    def abort(self) -> None:
        """Stop waiting for the current window (its acks are lost with the connection)."""
        self._wake()

    def _wake(self) -> None:
        if self._settled is not None and not self._settled.done():
            self._settled.set_result(None)

    async def publish(self, messages: Sequence[BusMessage], timeout: float) -> WindowResult:
        """Publish `messages` in order and wait up to `timeout` for their PubAcks."""
        assert self._prefix, "subscribe() first"
        size = len(messages)
        self._size = size
        self._acked = bytearray(size)
        self._received = 0
        self._error = None
        settled = self._settled = asyncio.get_running_loop().create_future()
        oversized: list[BusMessage] = []
        publish = self._nc.publish
        reply_prefix = self._prefix
        base = self._base
        limit = self._nc.max_payload - _HEADER_ROOM
        try:
            async with asyncio.timeout(timeout):
                for i, message in enumerate(messages):
                    headers = {"Nats-Msg-Id": message.msg_id}
                    nbytes = len(message.data) + len(message.msg_id)
                    if message.headers:  # the call's trace context
                        headers.update(message.headers)
                        nbytes += sum(len(k) + len(v) + 4 for k, v in message.headers)
                    if nbytes > limit:
                        # The server would refuse it on every attempt and hold up
                        # everything behind it; the caller reports the drop.
                        oversized.append(message)
                        self._mark(i, _ACK_PREFIX)
                        continue
                    await publish(
                        message.subject,
                        message.data,
                        reply=f"{reply_prefix}{base + i}",
                        headers=headers,
                    )
                await settled
        except TimeoutError:
            pass
        except Exception as exc:  # the client refused to send (closed, buffer full, ...)
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            first_missing = self._acked.find(0)
            done = size if first_missing < 0 else first_missing
            if not settled.done():
                settled.cancel()
            self._settled = None
            self._base += size
            self._size = 0
        return WindowResult(done, self._error, oversized)

    async def _on_reply(self, msg: Msg) -> None:
        try:
            number = int(msg.subject[len(self._prefix) :])
        except ValueError:
            return
        self._mark(number - self._base, msg.data)

    def _mark(self, index: int, data: bytes) -> None:
        if not 0 <= index < self._size or self._acked[index]:
            return
        if is_pub_ack(data):
            self._acked[index] = 1
            self._received += 1
            if self._received == self._size:
                self._wake()
        else:  # a refused message ends the window: nothing may overtake it
            self._error = data[:300].decode(errors="replace") or "no reply body (no responders?)"
            self._wake()
