"""Replay reads the spool forward: every byte comes off the disk about once, however
small the batches (counted with the spool's own read counters, not timed)."""

from __future__ import annotations

from pathlib import Path

from switchyard_common.bus import BusMessage
from switchyard_dataplane.spool import Spool
from switchyard_dataplane.spool_records import encode_record


def _msgs(start: int, count: int, size: int = 20) -> list[BusMessage]:
    return [
        BusMessage(f"usage.org{i % 3}", f"id-{i:06d}", bytes([i % 251]) * size)
        for i in range(start, start + count)
    ]


def _bytes(messages: list[BusMessage]) -> int:
    return sum(len(encode_record(m)) for m in messages)


def _drain(spool: Spool, batch: int) -> list[BusMessage]:
    out: list[BusMessage] = []
    while True:
        got = spool.peek(batch)
        if not got.messages:
            return out
        out.extend(got.messages)
        spool.commit(got)


def test_replay_in_small_batches_reads_each_byte_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path)  # one 8 MB segment holds it all
    messages = _msgs(0, 20000)  # about 1 MB
    spool.append(messages)
    total = _bytes(messages)
    assert spool.size_bytes == total

    assert _drain(spool, batch=7) == messages
    # Re-reading the rest of the segment (or a whole read buffer) per batch of 7 would
    # read hundreds of megabytes here.
    assert spool.bytes_read <= total + 4096
    assert spool.read_calls <= 10
    spool.close()


def test_reopen_and_replay_across_segments_read_linearly(tmp_path: Path) -> None:
    first = Spool(tmp_path, segment_bytes=32 * 1024)
    messages = _msgs(0, 20000)
    first.append(messages)
    first.commit(first.peek(5000))
    first.close()

    reopened = Spool(tmp_path, segment_bytes=32 * 1024)
    rest = messages[5000:]
    # Recovery validates every byte still to replay once, replay reads it once more;
    # the already committed part of the first segment at most once more.
    assert _drain(reopened, batch=5) == rest
    assert reopened.bytes_read <= 2 * _bytes(rest) + 32 * 1024 + 4096
    reopened.close()


def test_peeking_again_reads_nothing_new(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    messages = _msgs(0, 1000)
    spool.append(messages)
    first = spool.peek(100)
    reads = spool.bytes_read
    assert spool.peek(100) == first  # an undelivered batch is served again from memory
    spool.commit(first, 40)
    assert spool.peek(100).messages == messages[40:140]
    assert spool.bytes_read == reads
    spool.close()


def test_reading_behind_the_writer_reads_each_record_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096)
    messages = _msgs(0, 3000)
    out: list[BusMessage] = []
    for start in range(0, len(messages), 30):
        spool.append(messages[start : start + 30])
        out.extend(_drain(spool, batch=8))
    assert out == messages
    assert spool.bytes_read <= _bytes(messages) + 4096
    spool.close()


def test_record_larger_than_a_read_chunk(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    big = BusMessage("usage.big", "id-big", b"x" * (700 * 1024))
    messages = [*_msgs(0, 3), big, *_msgs(3, 3)]
    spool.append(messages)
    assert _drain(spool, batch=2) == messages
    assert spool.bytes_read <= 2 * _bytes(messages)
    spool.close()
    reopened = Spool(tmp_path)
    assert reopened.pending == 0
    reopened.close()


def test_damage_after_open_skips_that_segment_and_settles_pending(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=300)
    messages = _msgs(0, 30)
    spool.append(messages)
    segments = sorted(tmp_path.glob("seg-*.log"))
    assert len(segments) > 3
    record = len(encode_record(messages[0]))  # all records have the same size here
    first = segments[0].stat().st_size // record
    damaged = segments[1]
    data = bytearray(damaged.read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload: its CRC no longer matches
    damaged.write_bytes(bytes(data))

    out = _drain(spool, batch=4)
    assert out == messages[:first] + messages[first + len(data) // record :]
    assert spool.pending == 0  # the lost records are not waited for forever
    spool.append(_msgs(100, 2))
    assert [m.msg_id for m in _drain(spool, batch=4)] == ["id-000100", "id-000101"]
    spool.close()


def test_sync_only_when_something_was_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert not spool.needs_sync
    spool.append(_msgs(0, 1))
    assert spool.needs_sync
    spool.sync()
    assert not spool.needs_sync
    spool.close()
