"""The record format of the usage spool's segment files, and reading it back in chunks.

Each record is `>II` (payload length, CRC-32 of the payload) followed by the payload,
itself `>H` subject length, subject, `>H` msg id length, msg id, data. A record is only
trusted if its length is plausible and its checksum matches.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from switchyard_common.bus import BusMessage

__all__ = ["decode_record", "encode_record", "read_records"]

_HEADER = struct.Struct(">II")
_SHORT = struct.Struct(">H")
# A record larger than this is treated as corruption when reading back.
_MAX_RECORD = 64 * 1024 * 1024
# Bytes per disk read when replaying or recovering.
_CHUNK = 256 * 1024

# (fd, size, offset) -> bytes, like os.pread
Pread = Callable[[int, int, int], bytes]


def encode_record(message: BusMessage) -> bytes:
    subject = message.subject.encode()
    msg_id = message.msg_id.encode()
    payload = b"".join((_SHORT.pack(len(subject)), subject, _SHORT.pack(len(msg_id)), msg_id, message.data))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_record(buf: bytes, start: int, end: int) -> BusMessage:
    """The message whose payload is `buf[start:end]`; ValueError or struct.error if the
    payload's fields do not fit it."""
    (subject_len,) = _SHORT.unpack_from(buf, start)
    pos = start + _SHORT.size
    subject = buf[pos : pos + subject_len].decode()
    pos += subject_len
    (id_len,) = _SHORT.unpack_from(buf, pos)
    pos += _SHORT.size
    msg_id = buf[pos : pos + id_len].decode()
    pos += id_len
    if pos > end:
        raise ValueError("record fields overrun the payload")
    return BusMessage(subject=subject, msg_id=msg_id, data=buf[pos:end])


def _split(buf: bytes) -> tuple[list[tuple[int, int]], int, bool]:
    """Payload spans of the complete, intact records at the start of `buf`, the index
    just past the last one, and whether parsing stopped at a damaged record (rather
    than at the end of `buf`)."""
    spans: list[tuple[int, int]] = []
    view = memoryview(buf)
    size = len(buf)
    pos = 0
    while pos + _HEADER.size <= size:
        length, crc = _HEADER.unpack_from(buf, pos)
        if length > _MAX_RECORD:
            return spans, pos, True
        start = pos + _HEADER.size
        end = start + length
        if end > size:
            break
        if zlib.crc32(view[start:end]) != crc:
            return spans, pos, True
        spans.append((start, end))
        pos = end
    return spans, pos, False


def read_records(pread: Pread, fd: int, pos: int, end: int) -> tuple[bytes, list[tuple[int, int]], int, bool]:
    """One chunk of the records from file offset `pos` up to at most `end` (`pos < end`):
    the bytes read, the payload spans of the intact records in them, the file offset
    just past the last of those, and whether a damaged record (or data ending
    mid-record) follows. A partial record at the chunk's end is left for the next call,
    so consecutive calls read each byte about once."""
    buf = pread(fd, min(_CHUNK, end - pos), pos)
    spans, consumed, damaged = _split(buf)
    if not spans and not damaged:
        # The next record is larger than a chunk: read exactly that record.
        if len(buf) >= _HEADER.size:
            length, _ = _HEADER.unpack_from(buf)
            if length <= _MAX_RECORD and pos + _HEADER.size + length <= end:
                buf = pread(fd, _HEADER.size + length, pos)
                spans, consumed, damaged = _split(buf)
        damaged = damaged or not spans
    return buf, spans, pos + consumed, damaged
