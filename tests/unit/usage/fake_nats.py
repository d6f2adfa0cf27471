"""An in-memory stand-in for the parts of a NATS client the usage publisher uses.

`up` toggles reachability: when down, connecting waits and published messages are
never acknowledged, like a server that went away mid-flight. PubAcks go, as JSON in
the server's member order, to the publish's reply subject, delivered to the matching
subscription callback in publish order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError


@dataclass
class StoredMessage:
    subject: str
    data: bytes
    msg_id: str


@dataclass
class FakeMsg:
    subject: str
    data: bytes


@dataclass
class FakeBroker:
    up: bool = True
    # False: still connected, but publishes are never acknowledged (a stalled server).
    acks: bool = True
    # Subjects JetStream refuses with an API error (e.g. a stream that no longer takes them).
    rejected_subjects: set[str] = field(default_factory=set)
    max_payload: int = 1024 * 1024
    # True: PubAcks wait in `held` until `release()` (a slow server, acks in flight).
    hold_acks: bool = False
    held: list[tuple[FakeClient, FakeMsg]] = field(default_factory=list)
    streams: dict[str, StreamConfig] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    connects: int = 0
    publishes: int = 0

    async def connect(self) -> FakeClient:
        # Like nats.connect(max_reconnect_attempts=-1): keeps trying until the server is up.
        while not self.up:
            await asyncio.sleep(0.02)
        self.connects += 1
        return FakeClient(self)

    def store(self, subject: str, payload: bytes, msg_id: str) -> bytes:
        """JetStream's reply to one publish."""
        if subject in self.rejected_subjects:
            return b'{"error":{"code":503,"err_code":10077,"description":"rejected"}}'
        duplicate = msg_id in self.seen_ids
        if not duplicate:
            self.seen_ids.add(msg_id)
            self.messages.append(StoredMessage(subject, payload, msg_id))
        reply: dict[str, Any] = {"stream": "S", "seq": len(self.messages)}
        if duplicate:
            reply["duplicate"] = True
        return json.dumps(reply, separators=(",", ":")).encode()

    def release(self) -> None:
        """Deliver the held PubAcks, in order."""
        held, self.held = self.held, []
        for client, msg in held:
            client.deliver(msg)


class _StreamInfo:
    def __init__(self, config: StreamConfig) -> None:
        self.config = config


class FakeJetStream:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    async def stream_info(self, name: str) -> _StreamInfo:
        if name not in self.broker.streams:
            raise NotFoundError()
        return _StreamInfo(self.broker.streams[name])

    async def add_stream(self, config: StreamConfig) -> None:
        assert config.name is not None
        self.broker.streams[config.name] = config

    async def update_stream(self, config: StreamConfig) -> None:
        await self.add_stream(config)


class FakeClient:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.is_closed = False
        self._inboxes = 0
        self._subs: dict[str, Callable[[FakeMsg], Awaitable[None]]] = {}
        self._replies: asyncio.Queue[FakeMsg] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def is_connected(self) -> bool:
        return self.broker.up and not self.is_closed

    @property
    def max_payload(self) -> int:
        return self.broker.max_payload

    def jetstream(self, **_: Any) -> FakeJetStream:
        return FakeJetStream(self.broker)

    def new_inbox(self) -> str:
        self._inboxes += 1
        return f"_INBOX.fake{self._inboxes}"

    async def subscribe(self, subject: str, cb: Callable[[FakeMsg], Awaitable[None]]) -> None:
        assert subject.endswith(".*"), "the fake only routes `<prefix>.*` subscriptions"
        self._subs[subject[:-1]] = cb
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch())

    async def publish(
        self, subject: str, payload: bytes = b"", reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        if self.is_closed:
            raise RuntimeError("connection closed")
        if len(payload) > self.broker.max_payload:
            raise ValueError("maximum payload exceeded")
        self.broker.publishes += 1
        if not (self.broker.up and self.broker.acks):
            return  # lost on the way, or the server never answers
        ack = self.broker.store(subject, payload, (headers or {})["Nats-Msg-Id"])
        if not reply:
            return
        if self.broker.hold_acks:
            self.broker.held.append((self, FakeMsg(reply, ack)))
        else:
            self.deliver(FakeMsg(reply, ack))

    def deliver(self, msg: FakeMsg) -> None:
        self._replies.put_nowait(msg)

    async def _dispatch(self) -> None:
        # One task delivers all replies in order, like the client's subscription task.
        while True:
            msg = await self._replies.get()
            for prefix, cb in self._subs.items():
                if msg.subject.startswith(prefix):
                    await cb(msg)

    async def close(self) -> None:
        self.is_closed = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
