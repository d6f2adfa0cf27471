"""Embedded mode: drain the in-process bus into the database (no NATS)."""

from __future__ import annotations

import asyncio
import logging

from switchyard_common.bus import BusMessage, InProcessBus
from switchyard_common.usage_dead_letters import DeadLetter

from .batch_tracing import traced_process
from .pipeline import IngestPipeline
from .writer import brief_error

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

    async def refresh_lag(self) -> None:
        """The lag gauges when /metrics is scraped: what waits on the in-process bus and
        in the batch being written (no timestamps there: the age gauge stays 0)."""
        metrics = self.pipeline.metrics
        metrics.pending.set(self.bus.pending())
        metrics.ack_pending.set(len(self._inflight))

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
                        "usage batch of %d not written (%s); retrying in %.1fs",
                        len(messages),
                        brief_error(exc),
                        backoff,
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
        outcome = await traced_process(self.pipeline, messages)
        if not outcome.poison:
            return
        # No dead-letter stream in embedded mode: the table (listed by the control
        # plane's API) and the log are the record.
        letters = [
            DeadLetter(
                id=f"bus-{messages[index].msg_id}",
                subject=messages[index].subject,
                msg_id=messages[index].msg_id,
                reason=reason,
                deliveries=1,
                payload=messages[index].data,
            )
            for index, reason in outcome.poison
        ]
        try:
            await self.pipeline.writer.record_dead_letters(letters)
        except Exception as exc:
            log.error("recording %d dead letters failed: %s", len(letters), exc)
        for index, reason in outcome.poison:
            message = messages[index]
            log.error(
                "usage event %s on %s discarded: %s; payload %r",
                message.msg_id,
                message.subject,
                reason,
                message.data[:2000],
            )
            self.pipeline.metrics.dead_lettered.inc()
