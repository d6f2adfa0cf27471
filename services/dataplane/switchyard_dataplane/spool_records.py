"""The record format of the usage spool's segment files, and reading it back in chunks.

Each record is `>II` (payload length, CRC-32 of the payload) followed by the payload,
itself `>H` subject length, subject, `>H` msg id length, msg id, data. A record is only
trusted if its length is plausible and its checksum matches.

Messages with headers (the call's W3C trace context) set the top bit of the subject
length and put, between the msg id and the data, `>H` header-block length and the block:
per header `>H` name length, name, `>H` value length, value. Records written before
headers existed have the bit clear and read back unchanged.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from switchyard_common.bus import BusMessage

__all__ = ["decode_record", "encode_record", "read_records"]

_HEADER = struct.Struct(">II")
_SHORT = struct.Struct(">H")
# Top bit of the subject length: a header block follows the msg id.
_HAS_HEADERS = 0x8000
_MAX_SHORT = 0xFFFF
# A record larger than this is treated as corruption when reading back.
_MAX_RECORD = 64 * 1024 * 1024
# Bytes per disk read when replaying or recovering.
_CHUNK = 256 * 1024

# (fd, size, offset) -> bytes, like os.pread
Pread = Callable[[int, int, int], bytes]


def _header_block(headers: tuple[tuple[str, str], ...]) -> bytes:
    parts: list[bytes] = []
    for name, value in headers:
        for text in (name, value):
            raw = text.encode()
            parts.append(_SHORT.pack(len(raw)))
            parts.append(raw)
    return b"".join(parts)


def encode_record(message: BusMessage) -> bytes:
    subject = message.subject.encode()
    msg_id = message.msg_id.encode()
    if len(subject) >= _HAS_HEADERS:
        raise ValueError("subject too long for a spool record")
    block = _header_block(message.headers) if message.headers else b""
    fields: tuple[bytes, ...]
    if block and len(block) <= _MAX_SHORT:  # headers are best effort: never lose the event
        fields = (
            _SHORT.pack(len(subject) | _HAS_HEADERS),
            subject,
            _SHORT.pack(len(msg_id)),
            msg_id,
            _SHORT.pack(len(block)),
            block,
            message.data,
        )
    else:
        fields = (_SHORT.pack(len(subject)), subject, _SHORT.pack(len(msg_id)), msg_id, message.data)
    payload = b"".join(fields)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_headers(buf: bytes, start: int, end: int) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    pos = start
    while pos < end:
        texts: list[str] = []
        for _ in range(2):
            (size,) = _SHORT.unpack_from(buf, pos)
            pos += _SHORT.size
            if pos + size > end:
                raise ValueError("header fields overrun the header block")
            texts.append(buf[pos : pos + size].decode())
            pos += size
        headers.append((texts[0], texts[1]))
    return tuple(headers)


def decode_record(buf: bytes, start: int, end: int) -> BusMessage:
    """The message whose payload is `buf[start:end]`; ValueError or struct.error if the
    payload's fields do not fit it."""
    (subject_len,) = _SHORT.unpack_from(buf, start)
    has_headers = bool(subject_len & _HAS_HEADERS)
    subject_len &= ~_HAS_HEADERS
    pos = start + _SHORT.size
    subject = buf[pos : pos + subject_len].decode()
    pos += subject_len
    (id_len,) = _SHORT.unpack_from(buf, pos)
    pos += _SHORT.size
    msg_id = buf[pos : pos + id_len].decode()
    pos += id_len
    headers: tuple[tuple[str, str], ...] = ()
    if has_headers:
        (block_len,) = _SHORT.unpack_from(buf, pos)
        pos += _SHORT.size
        if pos + block_len > end:
            raise ValueError("header block overruns the payload")
        headers = _decode_headers(buf, pos, pos + block_len)
        pos += block_len
    if pos > end:
        raise ValueError("record fields overrun the payload")
    return BusMessage(subject=subject, msg_id=msg_id, data=buf[pos:end], headers=headers)


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
