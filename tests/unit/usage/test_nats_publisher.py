"""The usage publisher against an in-memory broker: spool while down, ordered replay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from switchyard_common.bus import BusMessage
from switchyard_dataplane.nats_publisher import NatsPublisher
from switchyard_dataplane.spool import Spool

from .fake_nats import FakeBroker


def _msgs(start: int, count: int) -> list[BusMessage]:
    return [BusMessage(f"usage.acme{i % 2}", f"evt-{i:05d}", b"{}") for i in range(start, start + count)]


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _publisher(broker: FakeBroker, spool_dir: Path, **kwargs: object) -> NatsPublisher:
    return NatsPublisher(
        "nats://fake",
        "USAGE",
        "usage",
        spool_dir,
        connect=broker.connect,  # type: ignore[arg-type]  # a structural fake of nats.Client
        publish_timeout=0.2,
        drain_timeout=1.0,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_publishes_with_msg_id_and_creates_stream(tmp_path: Path) -> None:
    broker = FakeBroker()
    publisher = _publisher(broker, tmp_path)
    await publisher.start()
    for message in _msgs(0, 30):
        publisher.publish_nowait(message)
    await _until(lambda: len(broker.messages) == 30)
    assert [m.msg_id for m in broker.messages] == [m.msg_id for m in _msgs(0, 30)]
    assert broker.streams["USAGE"].subjects == ["usage.>"]
    assert publisher.stats.published == 30 and publisher.stats.spooled == 0
    await publisher.close()
    assert list(tmp_path.glob("seg-*")) == []


async def test_spools_while_down_and_replays_in_order(tmp_path: Path) -> None:
    broker = FakeBroker(up=False)
    publisher = _publisher(broker, tmp_path)
    await publisher.start()  # must not fail although NATS is down
    early = _msgs(0, 40)
    for message in early:
        publisher.publish_nowait(message)
    await _until(lambda: publisher.stats.spooled == 40)
    assert broker.messages == []

    broker.up = True
    later = _msgs(40, 20)
    for message in later:
        publisher.publish_nowait(message)
    await _until(lambda: publisher.stats.replayed + publisher.stats.published == 60)
    assert [m.msg_id for m in broker.messages] == [m.msg_id for m in early + later]
    assert publisher.stats.replayed >= 40
    assert publisher.spool_pending == 0
    await publisher.close()
    assert list(tmp_path.glob("seg-*")) == []


async def test_full_queue_overflows_to_spool_without_blocking(tmp_path: Path) -> None:
    broker = FakeBroker(up=False)
    publisher = _publisher(broker, tmp_path, queue_size=5)
    await publisher.start()
    # No await between publishes: the background task cannot run, the queue overflows.
    for message in _msgs(0, 50):
        publisher.publish_nowait(message)
    assert publisher.stats.spooled == 45
    await publisher.close()
    spool = Spool(tmp_path)
    stored = {m.msg_id for m in spool.peek(100).messages}
    spool.close()
    assert stored == {m.msg_id for m in _msgs(0, 50)}
    assert publisher.stats.dropped == 0


async def test_spool_survives_restart_and_is_replayed_first(tmp_path: Path) -> None:
    broker = FakeBroker(up=False)
    first = _publisher(broker, tmp_path)
    await first.start()
    for message in _msgs(0, 10):
        first.publish_nowait(message)
    await first.close()  # NATS still down: everything ends on disk

    broker.up = True
    second = _publisher(broker, tmp_path)
    await second.start()
    for message in _msgs(10, 5):
        second.publish_nowait(message)
    await _until(lambda: len(broker.messages) == 15)
    assert [m.msg_id for m in broker.messages] == [m.msg_id for m in _msgs(0, 15)]
    await second.close()


async def test_close_drains_queue_when_connected(tmp_path: Path) -> None:
    broker = FakeBroker()
    publisher = _publisher(broker, tmp_path)
    await publisher.start()
    await _until(lambda: publisher.connected)
    for message in _msgs(0, 100):
        publisher.publish_nowait(message)
    await publisher.close()
    assert len(broker.messages) == 100


async def test_publish_nowait_never_raises_when_not_started(tmp_path: Path) -> None:
    publisher = _publisher(FakeBroker(), tmp_path, queue_size=1)
    publisher.publish_nowait(_msgs(0, 1)[0])
    publisher.publish_nowait(_msgs(1, 1)[0])  # queue full and no spool yet
    assert publisher.stats.dropped == 1


async def test_unacknowledged_publishes_are_spooled_and_replayed(tmp_path: Path) -> None:
    broker = FakeBroker()
    publisher = _publisher(broker, tmp_path)
    await publisher.start()
    await _until(lambda: publisher.connected)
    broker.acks = False  # the server stalls: publishes time out
    for message in _msgs(0, 20):
        publisher.publish_nowait(message)
    await _until(lambda: publisher.stats.spooled == 20)
    broker.acks = True
    for message in _msgs(20, 5):
        publisher.publish_nowait(message)
    await _until(lambda: len(broker.messages) == 25)
    assert [m.msg_id for m in broker.messages] == [m.msg_id for m in _msgs(0, 25)]
    assert publisher.stats.publish_failures >= 1
    await publisher.close()
