"""A bounded, ordered, crash-safe on-disk FIFO of bus messages.

The data plane writes usage events here while NATS is unreachable and replays them,
oldest first, once it is back. Layout of the spool directory:

    seg-00000000000000000001.log   segment files, appended in order
    seg-00000000000000000002.log
    cursor                          "<segment seq> <byte offset>" of the next record to replay

Each record carries its length and a CRC-32 (see `spool_records`).

Crash safety: a record is only replayed if its length and checksum are intact, so a
write torn by a crash (or by a full disk) ends that segment; on reopen the torn tail is
truncated and new records go to a fresh segment. The cursor is advisory: losing it (or
a crash between a replay and its cursor update) replays some records again, which is
harmless because every message keeps its msg id and both JetStream and the ingest drop
duplicates.

Replay reads each byte once: `peek` serves records from a read-ahead buffer that a
reader fills by reading forward in large chunks from where it stopped, and `commit`
drops what was delivered from its front. The committed position (the cursor) is
separate from the read-ahead, so an undelivered batch is simply peeked again.

Thread safety: every method may be called from any thread. Writes go to the OS without
fsync (`append` must be cheap enough to call from the event loop); `sync` makes them
durable and does the fsyncs outside the lock, so an fsync in a worker thread never
stalls an `append` on the event loop. Disk reads and cursor writes likewise happen
outside the writers' lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from switchyard_common.bus import BusMessage

from .spool_records import decode_record, encode_record, read_records

__all__ = ["Spool", "SpoolBatch"]

log = logging.getLogger(__name__)

_SEGMENT_PREFIX = "seg-"
_SEGMENT_SUFFIX = ".log"
_CURSOR = "cursor"


def _segment_name(seq: int) -> str:
    return f"{_SEGMENT_PREFIX}{seq:020d}{_SEGMENT_SUFFIX}"


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
        # Disk reads of segment data (recovery and replay), for metrics and tests.
        self.bytes_read = 0
        self.read_calls = 0
        # Lock order: _read_lock, then _lock. _lock guards the writer and the
        # accounting and is never held during a disk read, fsync or cursor write.
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._sizes: dict[int, int] = {}  # segment seq -> bytes of whole records written
        self._total = 0
        self._write_seq = 0
        self._write_fd: int | None = None
        self._to_sync: list[int] = []  # retired segment fds awaiting fsync + close
        self._data_dirty = False
        self._dir_dirty = False
        self._pending = 0
        self._closed = False
        # Committed position (what the cursor file records); changed only under _read_lock.
        self._read_seq = 0
        self._read_offset = 0
        # Reader: records decoded past the committed position, oldest first, as
        # (message, segment seq, offset just past it); and where reading continues.
        self._ahead: deque[tuple[BusMessage, int, int]] = deque()
        self._scan_seq = 0
        self._scan_pos = 0
        self._scan_fd: int | None = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- state ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages appended and not yet committed."""
        return self._pending

    @property
    def size_bytes(self) -> int:
        return self._total

    @property
    def needs_sync(self) -> bool:
        """Whether `sync` has anything to do (lets callers skip a thread hop)."""
        return self._data_dirty or self._dir_dirty or bool(self._to_sync)

    # -- reading segment data ---------------------------------------------------------

    def _pread(self, fd: int, size: int, offset: int) -> bytes:
        data = os.pread(fd, size, offset)
        self.bytes_read += len(data)
        self.read_calls += 1
        return data

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
            cursor = cursor_offset if seq == cursor_seq else 0
            count, before_cursor, on_boundary, intact_end = self._scan_segment(path, size, cursor)
            # Trust the cursor only on a record boundary; otherwise replay the segment.
            start, remaining = (cursor, count - before_cursor) if on_boundary else (0, count)
            if intact_end < size:
                log.warning("spool segment %s: truncating %d torn bytes", path.name, size - intact_end)
                with path.open("r+b") as fh:
                    fh.truncate(intact_end)
                    os.fsync(fh.fileno())
                size = intact_end
            if not remaining:
                path.unlink(missing_ok=True)
                continue
            if not self._sizes:
                self._read_seq, self._read_offset = seq, start
            self._sizes[seq] = size
            self._total += size
            self._pending += remaining
        # Never append to a segment that existed before: a fresh one keeps any damage
        # from a previous crash confined to records already accounted for above.
        self._write_seq = (max(seqs) if seqs else 0) + 1
        if not self._sizes:
            self._read_seq, self._read_offset = self._write_seq, 0
        self._scan_seq, self._scan_pos = self._read_seq, self._read_offset
        self._save_cursor()

    def _scan_segment(self, path: Path, size: int, cursor: int) -> tuple[int, int, bool, int]:
        """Validate a segment: (intact records, how many end at or before `cursor`,
        whether `cursor` is a record boundary, offset where the intact data ends)."""
        count = before = 0
        on_boundary = cursor == 0
        pos = 0
        fd = os.open(path, os.O_RDONLY)
        try:
            while pos < size:
                _, spans, next_pos, damaged = read_records(self._pread, fd, pos, size)
                for _, end in spans:
                    count += 1
                    if pos + end <= cursor:
                        before += 1
                        on_boundary = on_boundary or pos + end == cursor
                pos = next_pos
                if damaged:
                    break
        finally:
            os.close(fd)
        return count, before, on_boundary, pos

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
        records = [encode_record(message) for message in messages]
        with self._lock:
            if self._closed:
                raise RuntimeError("spool is closed")
            written = 0
            try:
                for record in records:
                    if self._total + len(record) > self.max_bytes:
                        break
                    self._write_record(record)
                    written += 1
            finally:
                self._pending += written
            return written

    def _write_record(self, record: bytes) -> None:
        size = self._sizes.get(self._write_seq, 0)
        if self._write_fd is not None and size > 0 and size + len(record) > self.segment_bytes:
            self._retire_write_segment()
        if self._write_fd is None:
            path = self.directory / _segment_name(self._write_seq)
            self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._sizes.setdefault(self._write_seq, 0)
            self._dir_dirty = True
        view = memoryview(record)
        try:
            while view:
                written = os.write(self._write_fd, view)
                view = view[written:]
        except OSError:
            # Part of the record may be on disk past the known end: never append behind
            # it, so that the damage stays a torn tail (truncated on reopen).
            self._retire_write_segment()
            raise
        self._sizes[self._write_seq] += len(record)
        self._total += len(record)
        self._data_dirty = True

    def _retire_write_segment(self) -> None:
        """Caller holds _lock. Later records go to a new segment."""
        if self._write_fd is not None:
            self._to_sync.append(self._write_fd)
            self._write_fd = None
        self._write_seq += 1

    def sync(self) -> None:
        """Make everything appended so far durable (fsync of data and directory)."""
        with self._lock:
            fds = [os.dup(fd) for fd in self._to_sync]
            for fd in self._to_sync:
                os.close(fd)
            self._to_sync.clear()
            if self._write_fd is not None and self._data_dirty:
                fds.append(os.dup(self._write_fd))
            self._data_dirty = False
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
        with self._read_lock:
            if len(self._ahead) < max_items:
                self._read_ahead(max_items)
            items = list(islice(self._ahead, max_items))
            if not items:
                self._settle_empty()
        return SpoolBatch([item[0] for item in items], [(item[1], item[2]) for item in items])

    def _read_ahead(self, want: int) -> None:
        """Caller holds _read_lock. Decode records from where the reader stopped until
        `want` are buffered or everything written so far is read."""
        while len(self._ahead) < want:
            with self._lock:
                if self._closed:
                    return
                size = self._sizes.get(self._scan_seq)
                live = self._scan_seq >= self._write_seq
                later = [seq for seq in self._sizes if seq > self._scan_seq]
            if size is None:  # segment not written yet, or gone: skip to the next one
                if not later:
                    return
                self._move_scan(min(later), 0)
                continue
            if self._scan_pos >= size:
                if live:
                    return  # caught up with the writer
                self._move_scan(self._scan_seq + 1, 0)
                continue
            if self._scan_fd is None:
                self._scan_fd = os.open(self.directory / _segment_name(self._scan_seq), os.O_RDONLY)
            start = self._scan_pos
            buf, spans, next_pos, damaged = read_records(self._pread, self._scan_fd, start, size)
            seq = self._scan_seq
            for span_start, span_end in spans:
                try:
                    message = decode_record(buf, span_start, span_end)
                except (struct.error, ValueError):
                    damaged = True
                    break
                self._ahead.append((message, seq, start + span_end))
                self._scan_pos = start + span_end
            else:
                self._scan_pos = next_pos
            if damaged:
                self._skip_damaged_segment(seq)

    def _skip_damaged_segment(self, seq: int) -> None:
        """Only disk corruption after the spool was opened gets here: whole records
        written by this process were damaged in place. The rest of the segment is lost;
        replay goes on with the next one."""
        log.error(
            "spool segment %s is damaged at offset %d; skipping its rest", _segment_name(seq), self._scan_pos
        )
        with self._lock:
            if seq == self._write_seq:
                self._retire_write_segment()
        self._move_scan(seq + 1, 0)

    def _move_scan(self, seq: int, pos: int) -> None:
        if self._scan_fd is not None:
            os.close(self._scan_fd)
            self._scan_fd = None
        self._scan_seq, self._scan_pos = seq, pos

    def _settle_empty(self) -> None:
        """Nothing is left to read: forget records lost to damage, so `pending` does not
        promise messages that will never come."""
        with self._lock:
            if self._scan_pos >= self._sizes.get(self._scan_seq, 0) and not any(
                seq > self._scan_seq for seq in self._sizes
            ):
                self._pending = 0

    def commit(self, batch: SpoolBatch, count: int | None = None) -> None:
        """Mark the first `count` messages of `batch` (default all) as delivered and
        delete the segments that are now fully replayed."""
        count = len(batch.messages) if count is None else count
        if count <= 0:
            return
        seq, offset = batch.positions[count - 1]
        with self._read_lock:
            if (seq, offset) <= (self._read_seq, self._read_offset):
                return  # already committed (a stale batch)
            ahead = self._ahead
            delivered = 0
            while ahead and (ahead[0][1], ahead[0][2]) <= (seq, offset):
                ahead.popleft()
                delivered += 1
            removed: list[int] = []
            with self._lock:
                self._pending = max(0, self._pending - delivered)
                self._read_seq, self._read_offset = seq, offset
                for segment in sorted(self._sizes):
                    fully_read = segment < seq or (segment == seq and offset >= self._sizes[segment])
                    if not fully_read:
                        break
                    if segment == self._write_seq:
                        if self._pending:
                            break
                        # Everything is replayed: retire the active segment too, so an
                        # idle spool holds no files. The next append opens a new one.
                        if self._write_fd is not None:
                            os.close(self._write_fd)
                            self._write_fd = None
                        self._write_seq += 1
                        self._read_seq, self._read_offset = self._write_seq, 0
                    self._total -= self._sizes.pop(segment)
                    removed.append(segment)
                    self._dir_dirty = True
                    if self._read_seq == segment:
                        self._read_seq, self._read_offset = segment + 1, 0
            if (self._scan_seq, self._scan_pos) < (self._read_seq, self._read_offset):
                # The reader sat at the end of a segment that is now deleted.
                self._move_scan(self._read_seq, self._read_offset)
            for segment in removed:
                (self.directory / _segment_name(segment)).unlink(missing_ok=True)
            self._save_cursor()

    def close(self) -> None:
        """Sync and release file descriptors."""
        if self._closed:
            return
        self.sync()
        with self._read_lock, self._lock:
            self._closed = True
            if self._write_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._write_fd)
                self._write_fd = None
            self._move_scan(self._scan_seq, self._scan_pos)
