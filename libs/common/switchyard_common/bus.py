"""The usage-event bus interface and its in-process implementation (embedded mode).

Split mode uses NATS JetStream (see switchyard_dataplane.nats_publisher and
switchyard_ingest.consumer); embedded mode wires the same publisher interface to an
in-process queue that the ingest writer drains.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

__all__ = ["BusMessage", "EventPublisher", "InProcessBus"]


@dataclass(slots=True, frozen=True)
class BusMessage:
    subject: str
    msg_id: str
    data: bytes
    # Extra message headers besides Nats-Msg-Id: the W3C `traceparent`/`tracestate` of
    # the call that produced the event, when tracing is on (kept by the disk spool).
    headers: tuple[tuple[str, str], ...] = ()


class EventPublisher(Protocol):
    """Publishes one message; must never block the caller on the network."""

    def publish_nowait(self, message: BusMessage) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class InProcessBus:
    """An unbounded in-process queue; the embedded ingest drains it."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[BusMessage] = asyncio.Queue()

    def publish_nowait(self, message: BusMessage) -> None:
        self._queue.put_nowait(message)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get_batch(self, max_items: int, timeout: float) -> list[BusMessage]:
        """Wait up to `timeout` for a first message, then take what else is queued."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        # that races with a result, leaving a cancelled consumer hanging.
        try:
            async with asyncio.timeout(timeout):
                first = await self._queue.get()
        except TimeoutError:
            return []
        batch = [first]
        while len(batch) < max_items and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def pending(self) -> int:
        return self._queue.qsize()
