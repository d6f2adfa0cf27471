"""Embedded mode: drain the in-process bus into the database (no NATS)."""

from __future__ import annotations

import asyncio
import logging

from switchyard_common.bus import BusMessage, InProcessBus

from .pipeline import IngestPipeline

__all__ = ["BusConsumer"]

log = logging.getLogger(__name__)

_MAX_BACKOFF = 10.0


class BusConsumer:
    def __init__(
        self, bus: InProcessBus, pipeline: IngestPipeline, *, batch_size: int, batch_timeout: float
    ) -> None:
        self.bus = bus
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        # Taken off the bus and not yet committed; written by `flush` on shutdown.
        self._inflight: list[BusMessage] = []

    @property
    def ready(self) -> bool:
        return True

    async def run(self) -> None:
        """Runs until cancelled. A failed write is retried with the same batch: the bus
        has no redelivery, so giving up would lose the events."""
        while True:
            messages = await self.bus.get_batch(self.batch_size, self.batch_timeout)
            if not messages:
                continue
            self._inflight = messages
            backoff = 0.5
            while True:
                try:
                    await self._write(messages)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.error(
                        "usage batch of %d not written (%s); retrying in %.1fs", len(messages), exc, backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
            self._inflight = []

    async def flush(self) -> None:
        """Write the interrupted batch and what is still on the bus, once (shutdown)."""
        messages, self._inflight = self._inflight, []
        while self.bus.pending():
            messages.extend(await self.bus.get_batch(self.batch_size, 0.01))
        for start in range(0, len(messages), self.batch_size):
            try:
                await self._write(messages[start : start + self.batch_size])
            except Exception as exc:
                log.error("%d usage events lost at shutdown: %s", len(messages) - start, exc)
                return

    async def _write(self, messages: list[BusMessage]) -> None:
        outcome = await self.pipeline.process([m.data for m in messages])
        for index, reason in outcome.poison:
            # No dead-letter store in embedded mode: the log is the record.
            message = messages[index]
            log.error(
                "usage event %s on %s discarded: %s; payload %r",
                message.msg_id,
                message.subject,
                reason,
                message.data[:2000],
            )
            self.pipeline.metrics.dead_lettered.inc()
