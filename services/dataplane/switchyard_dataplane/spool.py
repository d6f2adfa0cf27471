"""A bounded, ordered, crash-safe on-disk FIFO of bus messages.

The data plane writes usage events here while NATS is unreachable and replays them,
oldest first, once it is back. Layout of the spool directory:

    seg-00000000000000000001.log   segment files, appended in order
    seg-00000000000000000002.log
    cursor                          "<segment seq> <byte offset>" of the next record to replay

Each record is `>II` (payload length, CRC-32 of the payload) followed by the payload,
itself `>H` subject length, subject, `>H` msg id length, msg id, data.

Crash safety: a record is only replayed if its length and checksum are intact, so a
write torn by a crash (or by a full disk) ends that segment; on reopen the torn tail is
truncated and new records go to a fresh segment. The cursor is advisory: losing it (or
a crash between a replay and its cursor update) replays some records again, which is
harmless because every message keeps its msg id and both JetStream and the ingest drop
duplicates.

Thread safety: every method may be called from any thread. Writes go to the OS without
fsync (`append` must be cheap enough to call from the event loop); `sync` makes them
durable and does the fsyncs outside the lock, so an fsync in a worker thread never
stalls an `append` on the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from switchyard_common.bus import BusMessage

__all__ = ["Spool", "SpoolBatch"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">II")
_SHORT = struct.Struct(">H")
_SEGMENT_PREFIX = "seg-"
_SEGMENT_SUFFIX = ".log"
_CURSOR = "cursor"
# A record larger than this is treated as corruption when reading back.
_MAX_RECORD = 64 * 1024 * 1024


def _encode(message: BusMessage) -> bytes:
    subject = message.subject.encode()
    msg_id = message.msg_id.encode()
    payload = b"".join((_SHORT.pack(len(subject)), subject, _SHORT.pack(len(msg_id)), msg_id, message.data))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> BusMessage:
    (subject_len,) = _SHORT.unpack_from(payload, 0)
    pos = _SHORT.size
    subject = payload[pos : pos + subject_len].decode()
    pos += subject_len
    (id_len,) = _SHORT.unpack_from(payload, pos)
    pos += _SHORT.size
    msg_id = payload[pos : pos + id_len].decode()
    pos += id_len
    return BusMessage(subject=subject, msg_id=msg_id, data=payload[pos:])


def _segment_name(seq: int) -> str:
    return f"{_SEGMENT_PREFIX}{seq:020d}{_SEGMENT_SUFFIX}"


def _read_records(
    path: Path, start: int, max_records: int | None = None
) -> tuple[list[tuple[BusMessage, int]], int]:
    """Up to `max_records` intact records of a segment from `start`, each with the
    offset just past it, and the offset where the intact data read ends."""
    records: list[tuple[BusMessage, int]] = []
    pos = start
    with path.open("rb", buffering=256 * 1024) as fh:
        fh.seek(start)
        while max_records is None or len(records) < max_records:
            header = fh.read(_HEADER.size)
            if len(header) < _HEADER.size:
                break
            length, crc = _HEADER.unpack(header)
            if length > _MAX_RECORD:
                break
            payload = fh.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            try:
                message = _decode(payload)
            except (struct.error, UnicodeDecodeError):
                break
            pos += _HEADER.size + length
            records.append((message, pos))
    return records, pos


@dataclass(slots=True, frozen=True)
class SpoolBatch:
    """Records read by `Spool.peek`; pass it back to `Spool.commit` once delivered."""

    messages: list[BusMessage]
    # (segment seq, offset just past the record) for each message
    positions: list[tuple[int, int]]


class Spool:
    """Append-only FIFO of `BusMessage`s in segment files, bounded in bytes."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        segment_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}  # segment seq -> bytes on disk
        self._write_seq = 0
        self._write_fd: int | None = None
        self._to_sync: list[int] = []  # retired segment fds awaiting fsync + close
        self._dir_dirty = False
        self._read_seq = 0
        self._read_offset = 0
        self._pending = 0
        self._closed = False
        self.directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- state ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages appended and not yet committed."""
        return self._pending

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    # -- recovery ---------------------------------------------------------------------

    def _recover(self) -> None:
        seqs = sorted(
            int(p.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)])
            for p in self.directory.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}")
        )
        cursor_seq, cursor_offset = self._load_cursor()
        for seq in seqs:
            path = self.directory / _segment_name(seq)
            if seq < cursor_seq:
                # Fully replayed before the crash; the delete did not happen yet.
                path.unlink(missing_ok=True)
                continue
            size = path.stat().st_size
            records, intact_end = _read_records(path, 0)
            # Trust the cursor only on a record boundary; otherwise replay the segment.
            boundaries = {0, *(end for _, end in records)}
            start = cursor_offset if seq == cursor_seq and cursor_offset in boundaries else 0
            records = [r for r in records if r[1] > start]
            if intact_end < size:
                log.warning("spool segment %s: truncating %d torn bytes", path.name, size - intact_end)
                with path.open("r+b") as fh:
                    fh.truncate(intact_end)
                    os.fsync(fh.fileno())
                size = intact_end
            if not records and start >= size:
                path.unlink(missing_ok=True)
                continue
            if not self._sizes:
                self._read_seq, self._read_offset = seq, start
            self._sizes[seq] = size
            self._pending += len(records)
        # Never append to a segment that existed before: a fresh one keeps any damage
        # from a previous crash confined to records already accounted for above.
        self._write_seq = (max(seqs) if seqs else 0) + 1
        if not self._sizes:
            self._read_seq, self._read_offset = self._write_seq, 0
        self._save_cursor()

    def _load_cursor(self) -> tuple[int, int]:
        try:
            seq_text, offset_text = (self.directory / _CURSOR).read_text().split()
            return int(seq_text), int(offset_text)
        except (OSError, ValueError):
            return 0, 0

    def _save_cursor(self) -> None:
        # Not fsynced: a stale cursor only causes harmless re-replays (see module doc).
        tmp = self.directory / f"{_CURSOR}.tmp"
        tmp.write_text(f"{self._read_seq} {self._read_offset}\n")
        os.replace(tmp, self.directory / _CURSOR)

    # -- writing ----------------------------------------------------------------------

    def append(self, messages: Sequence[BusMessage]) -> int:
        """Append in order; returns how many fit under `max_bytes` (the rest are dropped,
        so that the spool never fills the disk). Not durable until `sync`."""
        if not messages:
            return 0
        with self._lock:
            if self._closed:
                raise RuntimeError("spool is closed")
            accepted = 0
            chunks: list[bytes] = []
            total = self.size_bytes
            for message in messages:
                record = _encode(message)
                if total + len(record) > self.max_bytes:
                    break
                total += len(record)
                chunks.append(record)
                accepted += 1
            for record in chunks:
                self._write_record(record)
            self._pending += accepted
            return accepted

    def _write_record(self, record: bytes) -> None:
        size = self._sizes.get(self._write_seq, 0)
        if self._write_fd is not None and size > 0 and size + len(record) > self.segment_bytes:
            self._to_sync.append(self._write_fd)
            self._write_fd = None
            self._write_seq += 1
        if self._write_fd is None:
            path = self.directory / _segment_name(self._write_seq)
            self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._sizes.setdefault(self._write_seq, 0)
            self._dir_dirty = True
        view = memoryview(record)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]
        self._sizes[self._write_seq] += len(record)

    def sync(self) -> None:
        """Make everything appended so far durable (fsync of data and directory)."""
        with self._lock:
            fds = [os.dup(fd) for fd in self._to_sync]
            for fd in self._to_sync:
                os.close(fd)
            self._to_sync.clear()
            if self._write_fd is not None:
                fds.append(os.dup(self._write_fd))
            dir_dirty, self._dir_dirty = self._dir_dirty, False
        for fd in fds:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if dir_dirty:
            self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- replay -----------------------------------------------------------------------

    def peek(self, max_items: int) -> SpoolBatch:
        """The oldest uncommitted messages, in order, without removing them."""
        messages: list[BusMessage] = []
        positions: list[tuple[int, int]] = []
        with self._lock:
            seq, offset = self._read_seq, self._read_offset
            for segment in sorted(s for s in self._sizes if s >= seq):
                if len(messages) >= max_items:
                    break
                start = offset if segment == seq else 0
                path = self.directory / _segment_name(segment)
                records, _ = _read_records(path, start, max_items - len(messages))
                for message, end in records:
                    messages.append(message)
                    positions.append((segment, end))
        return SpoolBatch(messages, positions)

    def commit(self, batch: SpoolBatch, count: int | None = None) -> None:
        """Mark the first `count` messages of `batch` (default all) as delivered and
        delete the segments that are now fully replayed."""
        count = len(batch.messages) if count is None else count
        if count <= 0:
            return
        with self._lock:
            seq, offset = batch.positions[count - 1]
            if (seq, offset) <= (self._read_seq, self._read_offset):
                return  # already committed (a stale batch)
            self._pending = max(0, self._pending - count)
            self._read_seq, self._read_offset = seq, offset
            for segment in sorted(self._sizes):
                fully_read = segment < seq or (segment == seq and offset >= self._sizes[segment])
                if not fully_read:
                    break
                if segment == self._write_seq:
                    if self._pending:
                        break
                    # Everything is replayed: retire the active segment too, so an idle
                    # spool holds no files. The next append opens a new one.
                    if self._write_fd is not None:
                        os.close(self._write_fd)
                        self._write_fd = None
                    self._write_seq += 1
                    self._read_seq, self._read_offset = self._write_seq, 0
                del self._sizes[segment]
                (self.directory / _segment_name(segment)).unlink(missing_ok=True)
                self._dir_dirty = True
                if self._read_seq == segment:
                    self._read_seq, self._read_offset = segment + 1, 0
            self._save_cursor()

    def close(self) -> None:
        """Sync and release file descriptors."""
        if self._closed:
            return
        self.sync()
        with self._lock:
            self._closed = True
            if self._write_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._write_fd)
                self._write_fd = None
