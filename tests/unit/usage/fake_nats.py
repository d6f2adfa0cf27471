"""An in-memory stand-in for the parts of a NATS client the usage publisher uses.

`up` toggles reachability: when down, connecting waits and published messages are
never acknowledged, like a server that went away mid-flight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import PubAck, StreamConfig
from nats.js.errors import NotFoundError


@dataclass
class StoredMessage:
    subject: str
    data: bytes
    msg_id: str


@dataclass
class FakeBroker:
    up: bool = True
    # False: still connected, but publishes are never acknowledged (a stalled server).
    acks: bool = True
    streams: dict[str, StreamConfig] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    connects: int = 0

    async def connect(self) -> FakeClient:
        # Like nats.connect(max_reconnect_attempts=-1): keeps trying until the server is up.
        while not self.up:
            await asyncio.sleep(0.02)
        self.connects += 1
        return FakeClient(self)


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

    async def publish_async(
        self, subject: str, payload: bytes, headers: dict[str, Any] | None = None, **_: Any
    ) -> asyncio.Future[PubAck]:
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        if self.broker.up and self.broker.acks:
            msg_id = (headers or {})["Nats-Msg-Id"]
            duplicate = msg_id in self.broker.seen_ids
            if not duplicate:
                self.broker.seen_ids.add(msg_id)
                self.broker.messages.append(StoredMessage(subject, payload, msg_id))
            future.set_result(PubAck(stream="S", seq=len(self.broker.messages), duplicate=duplicate))
        return future


class FakeClient:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.is_closed = False

    @property
    def is_connected(self) -> bool:
        return self.broker.up and not self.is_closed

    def jetstream(self, **_: Any) -> FakeJetStream:
        return FakeJetStream(self.broker)

    async def close(self) -> None:
        self.is_closed = True
