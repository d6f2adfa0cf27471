"""Keeps the serving index in step with the control plane.

Watches `ControlPlane.WatchSnapshot` forever, reconnecting with jittered exponential
backoff. Each snapshot is validated by building its index; a valid one is swapped in and
then written to the cache file (tmp + rename), an invalid one is refused and the previous
index keeps serving. When the control plane cannot be reached and nothing is loaded yet,
the cached snapshot is served while the watch keeps retrying.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path

import grpc
from switchyard_common.errors import ConfigError
from switchyard_common.proto.controlplane_pb2 import Snapshot, WatchSnapshotRequest
from switchyard_common.proto.controlplane_pb2_grpc import ControlPlaneStub

from .index import IndexHolder, SnapshotIndex, build_index
from .metrics import Metrics

__all__ = ["SnapshotClient", "write_snapshot_cache"]

log = logging.getLogger(__name__)


def write_snapshot_cache(path: Path, snapshot: Snapshot) -> None:
    """Write atomically: readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(snapshot.SerializeToString())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SnapshotClient:
    def __init__(
        self,
        *,
        target: str,
        holder: IndexHolder,
        cache_path: Path,
        secret_key: str,
        env: Mapping[str, str],
        metrics: Metrics,
        dataplane_id: str = "",
        connect_timeout: float = 1.5,
        backoff_initial: float = 0.5,
        backoff_max: float = 15.0,
    ) -> None:
        self._target = target
        self._holder = holder
        self._cache_path = cache_path
        self._secret_key = secret_key
        self._env = env
        self._metrics = metrics
        self._dataplane_id = dataplane_id
        self._connect_timeout = connect_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self.connected = False

    def apply(self, snapshot: Snapshot) -> SnapshotIndex | None:
        """Build and swap in `snapshot`'s index; None (and nothing changes) if it is refused."""
        try:
            index = build_index(snapshot, secret_key=self._secret_key, env=self._env)
        except ConfigError as exc:
            self._metrics.snapshots_refused.inc()
            log.error("refused snapshot version %s (%s): %s", snapshot.version, snapshot.id, exc)
            return None
        for warning in index.warnings:
            log.warning("snapshot version %s: %s", snapshot.version, warning)
        self._holder.swap(index)
        self._metrics.snapshot_version.set(index.version)
        log.info("serving snapshot version %s (%s)", index.version, index.snapshot_id)
        return index

    def load_cache(self) -> bool:
        """Serve the cached snapshot; False if there is none or it does not validate."""
        try:
            data = self._cache_path.read_bytes()
        except FileNotFoundError:
            log.warning("no cached snapshot at %s", self._cache_path)
            return False
        try:
            snapshot = Snapshot.FromString(data)
        except Exception:  # protobuf raises DecodeError and others for a torn file
            log.exception("cached snapshot at %s does not parse", self._cache_path)
            return False
        if self.apply(snapshot) is None:
            return False
        log.warning("control plane unreachable: serving cached snapshot version %s", snapshot.version)
        return True

    async def run(self) -> None:
        """Watch forever (until cancelled)."""
        backoff = self._backoff_initial
        while True:
            try:
                received = await self._watch_once()
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, TimeoutError, OSError) as exc:
                received = False
                log.warning("snapshot watch on %s failed: %s", self._target, _describe(exc))
            finally:
                self.connected = False
            if received:
                backoff = self._backoff_initial
            if self._holder.current is None:
                self.load_cache()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self._backoff_max)

    async def _watch_once(self) -> bool:
        received = False
        async with grpc.aio.insecure_channel(self._target) as channel:
            await asyncio.wait_for(channel.channel_ready(), timeout=self._connect_timeout)
            self.connected = True
            stub = ControlPlaneStub(channel)
            # Always ask from 0: a restored or rebuilt control plane may have a lower
            # version than ours, and a same-version snapshot is cheap to skip.
            request = WatchSnapshotRequest(known_version=0, dataplane_id=self._dataplane_id)
            async for snapshot in stub.WatchSnapshot(request):
                received = True
                current = self._holder.current
                if current is not None and (current.version, current.snapshot_id) == (
                    snapshot.version,
                    snapshot.id,
                ):
                    continue
                if self.apply(snapshot) is not None:
                    await asyncio.to_thread(write_snapshot_cache, self._cache_path, snapshot)
        return received


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    if isinstance(exc, TimeoutError):
        return "control plane not reachable in time"
    return str(exc) or type(exc).__name__
