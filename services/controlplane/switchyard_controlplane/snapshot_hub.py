"""Keeps the current snapshot and fans new versions out to watchers.

The version lives in the database (config_state), so polling it is what makes replicas
coherent: a change committed through any control-plane replica reaches this replica's
watchers within one poll interval. Local writes call `poke()` to skip the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from opentelemetry.trace import Span, SpanContext
from sqlalchemy import Engine
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_common.tracing import TRACING

from . import metrics, repo
from .request_tracing import tracer
from .snapshot_builder import build_snapshot_from_engine

__all__ = ["SnapshotHub", "Watcher"]

log = logging.getLogger(__name__)

# Upper bound of the poll back-off while the database is unreachable.
_MAX_ERROR_BACKOFF = 5.0


class Watcher:
    """A subscriber's mailbox holding only the newest snapshot: a slow data plane skips
    intermediate versions instead of queueing them."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[pb.Snapshot | None] = asyncio.Queue(maxsize=1)

    def offer(self, snapshot: pb.Snapshot | None) -> None:
        with contextlib.suppress(asyncio.QueueEmpty):
            self._queue.get_nowait()
        self._queue.put_nowait(snapshot)

    async def next(self) -> pb.Snapshot | None:
        """The next snapshot, or None when the hub is shutting down."""
        return await self._queue.get()


class SnapshotHub:
    def __init__(self, engine: Engine, *, poll_interval: float = 0.2) -> None:
        self._engine = engine
        self._poll_interval = poll_interval
        self._current: pb.Snapshot | None = None
        self._watchers: set[Watcher] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # (version, span context) of the last traced rebuild: pushes of that version
        # become its children, so one trace shows a change reaching every data plane.
        self._built_span: tuple[int, SpanContext] | None = None

    @property
    def current(self) -> pb.Snapshot | None:
        return self._current

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    def build_span_context(self, version: int) -> SpanContext | None:
        """The span context of the traced rebuild that produced `version`, if any."""
        built = self._built_span
        if built is None or built[0] != version:
            return None
        return built[1]

    async def start(self) -> None:
        """Build the first snapshot (so GetSnapshot works at once), then poll in the background."""
        self._loop = asyncio.get_running_loop()
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="snapshot-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for watcher in list(self._watchers):
            watcher.offer(None)

    def poke(self) -> None:
        """Poll now instead of at the next tick (after a local commit). Safe to call from
        any thread: sync routes run in a worker thread, and asyncio.Event is not thread-safe."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(self._wake.set)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Watcher]:
        watcher = Watcher()
        self._watchers.add(watcher)
        metrics.CONNECTED_DATAPLANES.set(len(self._watchers))
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)
            metrics.CONNECTED_DATAPLANES.set(len(self._watchers))

    async def refresh(self) -> bool:
        """Rebuild if the stored version moved; True when a new snapshot was published."""
        version = await asyncio.to_thread(self._read_version)
        if self._current is not None and version == self._current.version:
            return False
        # Only rebuilds are traced: the version polls (several a second) are not.
        if not TRACING.enabled:
            return await self._rebuild(None)
        with tracer().start_as_current_span(
            "snapshot rebuild", attributes={"switchyard.snapshot.stored_version": version}
        ) as span:
            return await self._rebuild(span)

    async def _rebuild(self, span: Span | None) -> bool:
        snapshot = await asyncio.to_thread(build_snapshot_from_engine, self._engine)
        previous = self._current
        if previous is not None and snapshot.version <= previous.version:
            if span is not None:
                span.set_attribute("switchyard.snapshot.published", False)
            return False
        self._current = snapshot
        metrics.SNAPSHOT_VERSION.set(snapshot.version)
        metrics.SNAPSHOT_BUILDS.inc()
        for watcher in list(self._watchers):
            watcher.offer(snapshot)
        log.info("snapshot version %d published to %d watchers", snapshot.version, len(self._watchers))
        if span is not None:
            self._built_span = (snapshot.version, span.get_span_context())
            span.set_attributes(
                {
                    "switchyard.snapshot.published": True,
                    "switchyard.snapshot.version": snapshot.version,
                    "switchyard.snapshot.previous_version": previous.version if previous is not None else 0,
                    "switchyard.snapshot.id": snapshot.id,
                    "switchyard.snapshot.watchers": len(self._watchers),
                }
            )
        return True

    def _read_version(self) -> int:
        with self._engine.connect() as conn:
            return repo.read_config_version(conn).version

    async def _run(self) -> None:
        delay = self._poll_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            try:
                await self.refresh()
                delay = self._poll_interval
            except Exception:
                # Keep serving the last good snapshot while the database is away.
                metrics.SNAPSHOT_ERRORS.inc()
                log.warning("snapshot poll failed", exc_info=True)
                delay = min(max(delay * 2, self._poll_interval), _MAX_ERROR_BACKOFF)
