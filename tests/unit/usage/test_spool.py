"""The on-disk spool: order, bound, segment cleanup and recovery after a crash."""

from __future__ import annotations

from pathlib import Path

from switchyard_common.bus import BusMessage
from switchyard_dataplane.spool import Spool


def _msgs(start: int, count: int, size: int = 20) -> list[BusMessage]:
    return [
        BusMessage(f"usage.org{i % 3}", f"id-{i:05d}", bytes([i % 251]) * size)
        for i in range(start, start + count)
    ]


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.log"))


def _drain(spool: Spool, batch: int = 7) -> list[BusMessage]:
    out: list[BusMessage] = []
    while True:
        got = spool.peek(batch)
        if not got.messages:
            return out
        out.extend(got.messages)
        spool.commit(got)


def test_fifo_across_segments_and_cleanup(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=300)
    messages = _msgs(0, 40)
    assert spool.append(messages[:25]) == 25
    spool.sync()
    assert spool.append(messages[25:]) == 15
    assert len(_segments(tmp_path)) > 3
    assert spool.pending == 40
    assert _drain(spool) == messages
    assert spool.pending == 0
    assert _segments(tmp_path) == []
    assert spool.size_bytes == 0
    # usable again after it emptied
    spool.append(_msgs(100, 2))
    assert [m.msg_id for m in spool.peek(10).messages] == ["id-00100", "id-00101"]
    spool.close()


def test_peek_does_not_consume_and_partial_commit(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    messages = _msgs(0, 10)
    spool.append(messages)
    first = spool.peek(4)
    assert spool.peek(4).messages == first.messages == messages[:4]
    spool.commit(first, 2)
    assert spool.pending == 8
    assert spool.peek(3).messages == messages[2:5]
    spool.commit(first)  # stale batch overlapping what is committed
    assert spool.peek(1).messages == [messages[4]]
    spool.close()


def test_bounded_in_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000, segment_bytes=400)
    accepted = spool.append(_msgs(0, 100))
    assert 0 < accepted < 100
    assert spool.size_bytes <= 1000
    assert spool.append(_msgs(200, 5)) == 0  # full: new messages are refused, not the old
    assert [m.msg_id for m in _drain(spool)] == [f"id-{i:05d}" for i in range(accepted)]
    assert spool.append(_msgs(300, 1)) == 1  # room again once replayed
    spool.close()


def test_reopen_resumes_after_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    messages = _msgs(0, 20)
    spool.append(messages)
    spool.commit(spool.peek(8))
    spool.close()
    reopened = Spool(tmp_path, segment_bytes=200)
    assert reopened.pending == 12
    assert _drain(reopened) == messages[8:]
    reopened.close()


def test_torn_write_is_truncated_on_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    messages = _msgs(0, 5)
    spool.append(messages)
    spool.sync()
    # Simulate a crash in the middle of writing a sixth record: a header promising
    # more bytes than follow.
    segment = _segments(tmp_path)[-1]
    intact_size = segment.stat().st_size
    with segment.open("ab") as fh:
        fh.write(b"\x00\x00\x01\x00\xde\xad\xbe\xefpartial")
    del spool  # no close: the process died

    reopened = Spool(tmp_path)
    assert reopened.pending == 5
    assert segment.stat().st_size == intact_size
    more = _msgs(5, 3)
    reopened.append(more)
    assert _drain(reopened) == messages + more
    reopened.close()


def test_corrupt_record_ends_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    messages = _msgs(0, 4, size=10)
    spool.append(messages)
    spool.close()
    segment = _segments(tmp_path)[-1]
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # flip a payload byte of the last record: its CRC no longer matches
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path)
    assert _drain(reopened) == messages[:3]
    reopened.close()


def test_lost_cursor_replays_everything(tmp_path: Path) -> None:
    """At-least-once: without the cursor the spool replays from the oldest segment."""
    spool = Spool(tmp_path)
    messages = _msgs(0, 6)
    spool.append(messages)
    spool.commit(spool.peek(2))
    spool.close()
    (tmp_path / "cursor").unlink()
    reopened = Spool(tmp_path)
    assert _drain(reopened) == messages
    reopened.close()


def test_cursor_off_a_record_boundary_is_ignored(tmp_path: Path) -> None:
    """A damaged cursor must not make valid records look torn (and get truncated)."""
    spool = Spool(tmp_path)
    messages = _msgs(0, 4)
    spool.append(messages)
    spool.close()
    segment = _segments(tmp_path)[-1]
    size = segment.stat().st_size
    seq = int(segment.name[4:-4])
    (tmp_path / "cursor").write_text(f"{seq} 5\n")
    reopened = Spool(tmp_path)
    assert segment.stat().st_size == size
    assert _drain(reopened) == messages
    reopened.close()
