"""Read the usage events the data planes published, straight from the test's own
JetStream stream: the full event contract (attempt chain, refused_by, shadow_refusals),
independent of what the ingest stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["UsageTap"]

Event = dict[str, Any]


class UsageTap:
    """Reads the stream incrementally by sequence number; keeps every event seen."""

    def __init__(self, nats_url: str, stream: str) -> None:
        self.nats_url = nats_url
        self.stream = stream
        self.seen: list[Event] = []
        self._next_seq = 1

    async def _fetch(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(self.nats_url, connect_timeout=3, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(self.stream)
            except NotFoundError:
                return  # nothing published yet: the data plane creates the stream
            last = info.state.last_seq
            while self._next_seq <= last:
                try:
                    msg = await js.get_msg(self.stream, self._next_seq)
                except NotFoundError:
                    self._next_seq += 1
                    continue
                if msg.data:
                    self.seen.append(orjson.loads(msg.data))
                self._next_seq += 1
        finally:
            await nc.close()

    def refresh(self) -> list[Event]:
        asyncio.run(asyncio.wait_for(self._fetch(), 20))
        return self.seen

    def events(self, predicate: Callable[[Event], bool] | None = None, **equal: Any) -> list[Event]:
        """Events seen so far whose fields equal `equal` (and match `predicate`)."""
        self.refresh()
        return [
            e
            for e in self.seen
            if all(e.get(k) == v for k, v in equal.items()) and (predicate is None or predicate(e))
        ]

    def wait(
        self,
        count: int = 1,
        *,
        timeout: float = 10.0,
        predicate: Callable[[Event], bool] | None = None,
        **equal: Any,
    ) -> list[Event]:
        """Wait until at least `count` matching events arrived; return all matching ones."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(predicate, **equal)
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, (
                    f"expected {count} usage events matching {equal}, got {len(found)}: {found[-3:]}"
                )
                return found
            time.sleep(0.1)
