"""The disk spool keeps each message's trace-context headers, so a replayed usage event
continues its call's trace; records written before headers existed still read back."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from switchyard_common.bus import BusMessage
from switchyard_dataplane.spool import Spool
from switchyard_dataplane.spool_records import decode_record, encode_record

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _messages() -> list[BusMessage]:
    return [
        BusMessage("usage.acme", "evt-1", b'{"n":1}', (("traceparent", TRACEPARENT), ("tracestate", "v=é"))),
        BusMessage("usage.acme", "evt-2", b'{"n":2}'),
        BusMessage("usage.globex", "evt-3", b"", (("traceparent", TRACEPARENT),)),
    ]


def test_record_round_trip_keeps_headers() -> None:
    for message in _messages():
        record = encode_record(message)
        assert decode_record(record, 8, len(record)) == message


def test_record_without_headers_is_the_original_format() -> None:
    # What a data plane before trace headers wrote: the spool must replay it after an upgrade.
    subject, msg_id, data = b"usage.acme", b"evt-old", b'{"old":true}'
    payload = struct.pack(">H", len(subject)) + subject + struct.pack(">H", len(msg_id)) + msg_id + data
    old = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    assert encode_record(BusMessage("usage.acme", "evt-old", data)) == old
    assert decode_record(old, 8, len(old)) == BusMessage("usage.acme", "evt-old", data)


def test_damaged_header_block_is_refused() -> None:
    record = bytearray(encode_record(_messages()[0]))
    # The header block's length field sits after subject and msg id; make it overrun.
    offset = 8 + 2 + len("usage.acme") + 2 + len("evt-1")
    record[offset : offset + 2] = struct.pack(">H", 60000)
    with pytest.raises(ValueError):
        decode_record(bytes(record), 8, len(record))


def test_spool_replays_headers_after_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert spool.append(_messages()) == 3
    spool.close()
    reopened = Spool(tmp_path)
    batch = reopened.peek(10)
    assert batch.messages == _messages()
    reopened.commit(batch)
    assert reopened.pending == 0
    reopened.close()
