"""Usage-event publisher for split mode: data plane -> NATS JetStream, disk spool when down.

`publish_nowait` only appends the message to a bounded in-memory queue (or, if that is
full, to the spool without fsync), so the request path never waits on the network. One
background task moves messages to JetStream, each with `Nats-Msg-Id` = msg id, and
waits for the PubAcks; whatever cannot be acknowledged goes to the spool.

Publishing works in windows (see `ack_window`): up to `_BATCH` messages are sent back
to back, then the task waits once, with one timeout, for their PubAcks. The next window
starts only after that, so at most `_BATCH` publishes are ever in flight and whatever
follows a failed window goes through the spool.

Ordering: while the spool holds anything, new messages are appended behind it and
published from it, so replay is strictly oldest-first. Retries keep the msg id, so a
message that was stored but whose ack was lost is dropped by JetStream's duplicate
window, and by the ingest's insert-if-absent after that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError
from switchyard_common.bus import BusMessage

from .ack_window import AckWindow
from .spool import Spool

__all__ = ["NatsPublisher", "PublisherStats", "ensure_usage_stream"]

log = logging.getLogger(__name__)

# Messages per publish window (in flight at once) and per spool read.
_BATCH = 256
_MAX_BACKOFF = 5.0
# Seconds without NATS before queued messages are moved from memory to the spool.
_SPOOL_GRACE = 2.0
# After the queue turns non-empty, wait this long for more before publishing: the fixed
# cost of a window (timer, wake-ups, socket writes and reads) is then shared by several
# events. At 5,000 events/s this cuts the publisher's CPU per event by about 3x.
_LINGER = 0.005


@dataclass(slots=True)
class PublisherStats:
    """Counters for /metrics. `published` counts messages acknowledged by JetStream
    straight from memory, `replayed` those acknowledged from the spool."""

    published: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    publish_failures: int = 0


async def ensure_usage_stream(
    js: JetStreamContext, stream: str, subject_prefix: str, *, duplicate_window: float = 120.0
) -> None:
    """Create the usage stream if missing, or add our subject to an existing one.

    Never removes subjects or changes limits of an existing stream: operators may have
    tuned it, and the ingest adds nothing else to it.
    """
    subject = f"{subject_prefix}.>"
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=stream,
                subjects=[subject],
                storage=StorageType.FILE,
                duplicate_window=duplicate_window,
            )
        )
        return
    subjects = list(info.config.subjects or [])
    if subject not in subjects:
        config = info.config
        config.subjects = [*subjects, subject]
        await js.update_stream(config)


class NatsPublisher:
    """`switchyard_common.bus.EventPublisher` over JetStream with a disk spool."""

    def __init__(
        self,
        url: str,
        stream: str,
        subject_prefix: str,
        spool_dir: str | Path,
        queue_size: int = 10000,
        *,
        spool_max_bytes: int = 256 * 1024 * 1024,
        publish_timeout: float = 5.0,
        drain_timeout: float = 5.0,
        duplicate_window: float = 120.0,
        connect: Callable[[], Coroutine[Any, Any, NatsClient]] | None = None,
    ) -> None:
        """`connect` replaces `nats.connect(url, ...)` (tests use an in-memory broker)."""
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.spool_dir = Path(spool_dir)
        self.stats = PublisherStats()
        self._queue: deque[BusMessage] = deque()
        self._queue_size = queue_size
        # Set while the background task waits for the queue to turn non-empty.
        self._waiter: asyncio.Future[None] | None = None
        self._spool_max_bytes = spool_max_bytes
        self._publish_timeout = publish_timeout
        self._drain_timeout = drain_timeout
        self._duplicate_window = duplicate_window
        self._connect_fn = connect or self._open
        self._spool: Spool | None = None
        self._nc: NatsClient | None = None
        # Set once the stream is known to exist on the current connection.
        self._js: JetStreamContext | None = None
        self._acks: AckWindow | None = None
        self._task: asyncio.Task[None] | None = None
        self._connect_task: asyncio.Task[NatsClient] | None = None
        self._error_logged = False
        self._down_since: float | None = None
        self._stopping = asyncio.Event()
        # Taken off the queue, not yet acknowledged or spooled: spooled on shutdown.
        self._inflight: list[BusMessage] = []

    # -- EventPublisher ---------------------------------------------------------------

    def publish_nowait(self, message: BusMessage) -> None:
        try:
            if len(self._queue) < self._queue_size:
                self._queue.append(message)
                waiter = self._waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            else:
                self._to_spool((message,))
        except Exception:  # never let accounting break a response
            self.stats.dropped += 1
            log.exception("usage event %s dropped", message.msg_id)

    async def start(self) -> None:
        """Open the spool and start the background publisher. Does not wait for NATS."""
        if self._task is not None:
            return
        self._spool = await asyncio.to_thread(Spool, self.spool_dir, max_bytes=self._spool_max_bytes)
        if self._spool.pending:
            log.info("usage spool holds %d events from a previous run", self._spool.pending)
        self._task = asyncio.create_task(self._run(), name="nats-publisher")

    async def close(self) -> None:
        """Publish what is queued within `drain_timeout`, spool the rest, disconnect."""
        self._stopping.set()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self._drain_timeout)
            except (TimeoutError, Exception):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._task = None
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect_task
            self._connect_task = None
        leftovers = self._inflight + self._take_queued(len(self._queue))
        self._inflight = []
        self._to_spool(leftovers)
        if self._spool is not None:
            await asyncio.to_thread(self._spool.close)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    # -- introspection ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected and self._js is not None

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def spool_pending(self) -> int:
        return self._spool.pending if self._spool is not None else 0

    # -- background task --------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                if self.connected:
                    self._down_since = None
                elif self._down_since is None:
                    self._down_since = time.monotonic()
                if not self.connected and not await self._connect():
                    ok = False
                elif self.spool_pending:
                    ok = await self._replay_batch()
                else:
                    ok = await self._publish_from_queue()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("usage publisher: %s; spooling until NATS is back", exc)
                self._js = None
                ok = False
            if ok:
                backoff = 0.2
                continue
            await self._spool_while_waiting(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
        if self.connected:
            await self._final_drain()

    async def _connect(self) -> bool:
        """Advance the connection; True once JetStream is usable. The client connects
        and reconnects on its own in a task, so a NATS outage at start only delays it."""
        if self._nc is None:
            if self._connect_task is None:
                self._connect_task = asyncio.create_task(self._connect_fn(), name="nats-publisher-connect")
            if not self._connect_task.done():
                return False
            task, self._connect_task = self._connect_task, None
            self._nc = task.result()
        nc = self._nc
        if not nc.is_connected:
            return False
        if self._acks is None:
            acks = AckWindow(nc)
            await acks.subscribe()
            self._acks = acks
        js = nc.jetstream(timeout=self._publish_timeout)
        await ensure_usage_stream(
            js, self.stream, self.subject_prefix, duplicate_window=self._duplicate_window
        )
        self._js = js
        log.info("usage publisher connected to %s (stream %s)", self.url, self.stream)
        return True

    async def _open(self) -> NatsClient:
        return await nats.connect(
            self.url,
            name="switchyard-dataplane",
            connect_timeout=2,
            reconnect_time_wait=1,
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )

    async def _on_error(self, exc: Exception) -> None:
        # The client reports every failed (re)connect attempt; one line per outage is enough.
        if not self._error_logged:
            self._error_logged = True
            log.warning("NATS %s unreachable (%s); usage events go to the spool", self.url, exc)

    async def _on_disconnected(self) -> None:
        self._js = None
        if self._acks is not None:
            self._acks.abort()  # the acks in flight are lost: do not wait for the timeout
        if not self._stopping.is_set():
            log.warning("NATS connection lost; usage events go to the spool")

    async def _on_reconnected(self) -> None:
        self._error_logged = False
        log.info("NATS connection restored")

    async def _publish(self, messages: Sequence[BusMessage]) -> tuple[int, int]:
        """Publish one window; returns how many leading messages need no retry, and
        how many of those were dropped as too large."""
        acks = self._acks
        if acks is None or not self.connected:
            return 0, 0
        result = await acks.publish(messages, self._publish_timeout)
        for message in result.oversized:
            # The server would refuse it on every attempt and hold up everything behind it.
            self.stats.dropped += 1
            log.error(
                "usage event %s dropped: %d bytes exceed NATS max_payload", message.msg_id, len(message.data)
            )
        if result.done < len(messages):
            self.stats.publish_failures += 1
            log.warning(
                "usage publish: %d of %d events unacknowledged (%s); spooling them",
                len(messages) - result.done,
                len(messages),
                result.error or "timeout",
            )
            # Re-check the stream before the next attempt: the server may have lost it.
            self._js = None
        return result.done, len(result.oversized)

    async def _publish_from_queue(self) -> bool:
        batch = await self._take(timeout=0.5)
        if not batch:
            return True
        self._inflight = batch
        acked, dropped = await self._publish(batch)
        self.stats.published += acked - dropped
        self._inflight = []
        if acked < len(batch):
            self._to_spool(batch[acked:])
            await self._sync_spool()
            return False
        return True

    async def _replay_batch(self) -> bool:
        spool = self._spool
        assert spool is not None
        # New messages queue up behind the spooled ones to keep a single order.
        self._to_spool(self._take_queued(len(self._queue)))
        await self._sync_spool()
        batch = await asyncio.to_thread(spool.peek, _BATCH)
        if not batch.messages:
            return True
        acked, dropped = await self._publish(batch.messages)
        if acked:
            await asyncio.to_thread(spool.commit, batch, acked)
            self.stats.replayed += acked - dropped
            if not spool.pending:
                log.info("usage spool replayed")
        return acked == len(batch.messages)

    async def _take(self, timeout: float) -> list[BusMessage]:
        """Up to `_BATCH` queued messages; waits up to `timeout` for a first one."""
        if not self._queue:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                return []
            finally:
                self._waiter = None
            if not self._stopping.is_set():
                await asyncio.sleep(_LINGER)
        return self._take_queued(_BATCH)

    def _take_queued(self, limit: int) -> list[BusMessage]:
        queue = self._queue
        if len(queue) <= limit:
            messages = list(queue)
            queue.clear()
            return messages
        return [queue.popleft() for _ in range(limit)]

    async def _spool_while_waiting(self, seconds: float) -> None:
        """Back off before retrying. Queued messages stay in memory for a short grace
        period (start-up, a brief blip), then go to disk, so that a crash during a long
        outage loses nothing and the queue never fills."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            task = self._connect_task
            if remaining <= 0 or (task is not None and task.done()):
                break  # time to retry, or a pending connection attempt finished
            step = min(remaining, 0.1)
            if self._down_since is not None and time.monotonic() - self._down_since < _SPOOL_GRACE:
                if task is not None:
                    await asyncio.wait({task}, timeout=step)
                else:
                    await asyncio.sleep(step)
                continue
            batch = await self._take(timeout=step)
            if batch:
                self._to_spool(batch)
                await self._sync_spool()

    async def _final_drain(self) -> None:
        """On shutdown with NATS up: flush the spool, then the queue, until empty or failing."""
        while self.connected and (self.spool_pending or self._queue):
            ok = await self._replay_batch() if self.spool_pending else await self._publish_from_queue()
            if not ok:
                return

    def _to_spool(self, messages: Sequence[BusMessage]) -> None:
        if not messages:
            return
        if self._spool is None:
            self.stats.dropped += len(messages)
            log.error("%d usage events dropped: publisher not started", len(messages))
            return
        try:
            accepted = self._spool.append(messages)
        except Exception:
            accepted = 0
            log.exception("usage spool write failed")
        self.stats.spooled += accepted
        if accepted < len(messages):
            self.stats.dropped += len(messages) - accepted
            log.error("usage spool full: %d events dropped", len(messages) - accepted)

    async def _sync_spool(self) -> None:
        if self._spool is None or not self._spool.needs_sync:
            return
        try:
            await asyncio.to_thread(self._spool.sync)
        except OSError:
            log.exception("usage spool fsync failed")
