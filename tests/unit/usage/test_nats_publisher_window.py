"""The publisher's window against an in-memory broker: bounded in flight, refusals and
oversized events, and no per-message tasks on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

from switchyard_common.bus import BusMessage
from switchyard_dataplane.ack_window import is_pub_ack
from switchyard_dataplane.nats_publisher import NatsPublisher

from .fake_nats import FakeBroker


def _msgs(start: int, count: int, subject: str = "usage.acme") -> list[BusMessage]:
    return [BusMessage(subject, f"evt-{i:05d}", b"{}") for i in range(start, start + count)]


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _publisher(broker: FakeBroker, spool_dir: Path, publish_timeout: float = 0.2) -> NatsPublisher:
    return NatsPublisher(
        "nats://fake",
        "USAGE",
        "usage",
        spool_dir,
        connect=broker.connect,  # type: ignore[arg-type]  # a structural fake of nats.Client
        publish_timeout=publish_timeout,
        drain_timeout=1.0,
    )


async def test_publishes_in_flight_are_bounded_and_order_is_kept(tmp_path: Path) -> None:
    broker = FakeBroker(hold_acks=True)
    publisher = _publisher(broker, tmp_path, publish_timeout=10.0)
    await publisher.start()
    await _until(lambda: publisher.connected)
    messages = _msgs(0, 1000)
    for message in messages:
        publisher.publish_nowait(message)
    await _until(lambda: broker.publishes > 0)
    in_flight = broker.publishes
    await asyncio.sleep(0.1)
    # Without acks nothing more goes out: the window is the bound, not the queue.
    assert broker.publishes == in_flight < len(messages)
    broker.hold_acks = False
    broker.release()
    await _until(lambda: publisher.stats.published == len(messages))
    assert [m.msg_id for m in broker.messages] == [m.msg_id for m in messages]
    assert publisher.stats.spooled == 0 and publisher.stats.publish_failures == 0
    await publisher.close()


async def test_refused_event_and_those_after_it_are_retried(tmp_path: Path) -> None:
    broker = FakeBroker(rejected_subjects={"usage.refused"})
    publisher = _publisher(broker, tmp_path)
    await publisher.start()
    await _until(lambda: publisher.connected)
    messages = [*_msgs(0, 5), *_msgs(5, 1, "usage.refused"), *_msgs(6, 5)]
    for message in messages:
        publisher.publish_nowait(message)
    await _until(lambda: publisher.stats.publish_failures >= 1)
    assert publisher.stats.published == 5
    assert publisher.spool_pending >= 1  # the refused one is kept, not dropped
    broker.rejected_subjects.clear()
    await _until(lambda: publisher.spool_pending == 0 and len(broker.messages) == len(messages))
    stored = [m.msg_id for m in broker.messages]
    assert sorted(stored) == [m.msg_id for m in messages]  # each exactly once
    assert stored[:5] == [m.msg_id for m in messages[:5]]
    assert publisher.stats.dropped == 0
    await publisher.close()


async def test_oversized_event_is_dropped_without_holding_up_the_rest(tmp_path: Path) -> None:
    broker = FakeBroker(max_payload=4096)
    publisher = _publisher(broker, tmp_path)
    await publisher.start()
    await _until(lambda: publisher.connected)
    oversized = BusMessage("usage.acme", "evt-big", b"x" * 8192)
    for message in [*_msgs(0, 3), oversized, *_msgs(3, 3)]:
        publisher.publish_nowait(message)
    await _until(lambda: len(broker.messages) == 6)
    assert [m.msg_id for m in broker.messages] == [m.msg_id for m in _msgs(0, 6)]
    assert publisher.stats.dropped == 1 and publisher.stats.published == 6
    assert publisher.spool_pending == 0 and publisher.stats.publish_failures == 0
    await publisher.close()


async def test_no_task_per_event(tmp_path: Path) -> None:
    broker = FakeBroker()
    publisher = _publisher(broker, tmp_path)
    await publisher.start()
    await _until(lambda: publisher.connected)
    loop = asyncio.get_running_loop()
    created = 0

    def counting_factory(
        loop: asyncio.AbstractEventLoop,
        coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting_factory)  # type: ignore[arg-type]
    try:
        for start in range(0, 2000, 20):  # trickle in, like requests finishing
            for message in _msgs(start, 20):
                publisher.publish_nowait(message)
            await asyncio.sleep(0)
        await _until(lambda: publisher.stats.published == 2000)
    finally:
        loop.set_task_factory(None)
    assert created <= 5
    await publisher.close()


def test_pub_ack_replies() -> None:
    assert is_pub_ack(b'{"stream":"S", "seq":7}')
    assert is_pub_ack(b'{"stream":"S", "seq":7,"duplicate": true}')
    assert is_pub_ack(b'{ "seq": 7, "stream": "S" }')
    assert not is_pub_ack(b'{"error":{"code":503,"description":"no space"},"stream":"S","seq":0}')
    assert not is_pub_ack(b"")  # a 503 "no responders" status has no body
