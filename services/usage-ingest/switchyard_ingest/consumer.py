"""Split mode: a durable JetStream pull consumer feeding the ingest pipeline.

Delivery is at-least-once: a message is acked only after the transaction holding its
row has committed, and rows are keyed by event id, so redeliveries (after a crash, a
lost ack, an ack_wait expiry) change nothing. Poison messages are copied to the
dead-letter subject `<prefix>-deadletter.<rest>` (stream `<stream>_DEADLETTER`),
which is outside the consumer's filter, and then terminated. Database errors nak the
whole batch with a delay, so it comes back once the database does.
"""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError
from switchyard_common.usage_dead_letters import DeadLetter

from .batch_tracing import traced_process
from .lag import probe_jetstream_lag
from .pipeline import BatchOutcome, IngestPipeline
from .puller import BatchPuller
from .settings import IngestSettings
from .timeseries import TimeSeriesError
from .writer import brief_error

__all__ = ["JetStreamConsumer", "ensure_dead_letter_stream", "ensure_usage_stream"]

log = logging.getLogger(__name__)

_DUPLICATE_WINDOW = 120.0
_DEAD_LETTER_MAX_AGE = 30 * 24 * 3600.0
_MAX_BACKOFF = 10.0


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or add our subject to an existing one (never remove any)."""
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
        return
    subjects = list(info.config.subjects or [])
    missing = [s for s in config.subjects or [] if s not in subjects]
    if missing:
        current = info.config
        current.subjects = subjects + missing
        await js.update_stream(current)


async def ensure_usage_stream(js: JetStreamContext, settings: IngestSettings) -> None:
    """The usage stream, in the same shape as the data plane's publisher creates it."""
    await _ensure_stream(
        js,
        StreamConfig(
            name=settings.nats_stream,
            subjects=[f"{settings.usage_subject_prefix}.>"],
            storage=StorageType.FILE,
            duplicate_window=_DUPLICATE_WINDOW,
        ),
    )


async def ensure_dead_letter_stream(js: JetStreamContext, settings: IngestSettings) -> None:
    """Created on the first poison message only, so a healthy deployment has no
    dead-letter stream to look after."""
    await _ensure_stream(
        js,
        StreamConfig(
            name=settings.dead_letter_stream,
            subjects=[f"{settings.dead_letter_prefix}.>"],
            storage=StorageType.FILE,
            duplicate_window=_DUPLICATE_WINDOW,
            max_age=_DEAD_LETTER_MAX_AGE,
        ),
    )


class JetStreamConsumer:
    def __init__(self, settings: IngestSettings, pipeline: IngestPipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self._nc: NatsClient | None = None
        self._bound = False
        self._error_logged = False
        self._dead_letter_ready = False

    @property
    def ready(self) -> bool:
        return self._nc is not None and self._nc.is_connected and self._bound

    async def refresh_lag(self) -> None:
        """Update the lag gauges from JetStream (called when /metrics is scraped)."""
        await probe_jetstream_lag(self._nc, self.settings, self.pipeline.metrics)

    async def run(self) -> None:
        """Consume until cancelled; reconnects and rebinds forever."""
        backoff = 0.5
        try:
            while True:
                try:
                    await self._consume()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._bound = False
                    log.warning("usage consumer: %s; retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    continue
        finally:
            self._bound = False
            if self._nc is not None:
                nc, self._nc = self._nc, None
                try:
                    # Sends acks still buffered in the client.
                    await asyncio.wait_for(nc.close(), 5)
                except Exception as exc:
                    log.debug("closing NATS: %s", exc)

    async def _connect(self) -> NatsClient:
        if self._nc is None or self._nc.is_closed:
            self._nc = await nats.connect(
                self.settings.nats_url,
                name="switchyard-ingest",
                connect_timeout=2,
                reconnect_time_wait=1,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=self._on_error,
                reconnected_cb=self._on_reconnected,
            )
            log.info("usage consumer connected to %s", self.settings.nats_url)
        return self._nc

    async def _on_error(self, exc: Exception) -> None:
        if not self._error_logged:
            self._error_logged = True
            log.warning("NATS %s unreachable (%s); retrying", self.settings.nats_url, exc)

    async def _on_reconnected(self) -> None:
        self._error_logged = False
        log.info("NATS connection restored")

    async def _consume(self) -> None:
        s = self.settings
        nc = await self._connect()
        js = nc.jetstream()
        await ensure_usage_stream(js, s)
        config = ConsumerConfig(
            durable_name=s.nats_durable,
            filter_subject=f"{s.usage_subject_prefix}.>",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=s.nats_ack_wait,
            max_deliver=-1,  # database outages must not discard events
            max_ack_pending=max(1000, (s.write_concurrency + 2) * s.batch_size),
        )
        try:
            await js.add_consumer(s.nats_stream, config)
        except APIError as exc:
            # Exists with settings this server will not change in place: keep it.
            log.warning("usage consumer %s kept as is: %s", s.nats_durable, exc)
        puller = await BatchPuller(nc, s.nats_stream, s.nats_durable).start()
        self._bound = True
        backoff = 0.5
        # Up to `write_concurrency` batches are written at once (decode, database,
        # time-series store, acks) while the next is fetched: NATS, Python and the
        # database overlap. Concurrent batches lock rollup rows in the same order
        # (no deadlock) and stamp store points by revision (no stale overwrite).
        writing: set[asyncio.Task[bool]] = set()
        try:
            while True:
                msgs = await puller.fetch(s.batch_size, s.batch_timeout)
                if len(writing) >= s.write_concurrency or (writing and not msgs):
                    done, writing = await asyncio.wait(writing, return_when=asyncio.FIRST_COMPLETED)
                    if all(task.result() for task in done):
                        backoff = 0.5
                    else:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, _MAX_BACKOFF)
                if msgs:
                    writing.add(asyncio.create_task(self._handle(js, msgs), name="ingest-batch"))
        finally:
            self._bound = False
            if writing:
                # Let writes in progress finish and send their acks (they cannot be
                # interrupted inside the database call anyway).
                await asyncio.wait(writing, timeout=15)
            await puller.stop()

    async def _handle(self, js: JetStreamContext, msgs: list[Msg]) -> bool:
        """Process one fetched batch; False if it must be retried later."""
        try:
            outcome = await traced_process(self.pipeline, msgs)
        except Exception as exc:
            log.error("usage batch of %d not written: %s; redelivering", len(msgs), brief_error(exc))
            await self._after_failure(js, msgs, exc)
            return False
        return await self._settle(js, msgs, outcome)

    async def _settle(self, js: JetStreamContext, msgs: list[Msg], outcome: BatchOutcome) -> bool:
        for index in outcome.stored:
            await msgs[index].ack()
        healthy = True
        for index, reason in outcome.poison:
            if not await self._dead_letter(js, msgs[index], reason):
                healthy = False
        return healthy

    async def _after_failure(self, js: JetStreamContext, msgs: list[Msg], exc: Exception) -> None:
        """Redeliver a failed batch. While a dependency is down that is all: the events
        wait in JetStream. If both stores are up and the batch still fails, something in
        it is bad: messages delivered `max_deliveries` times are then tried one by one
        and dead-lettered if they fail alone, so they cannot hold the others back."""
        limit = self.settings.max_deliveries
        suspects = [m for m in msgs if m.metadata.num_delivered >= limit]
        if not suspects or isinstance(exc, TimeSeriesError) or not await self.pipeline.writer.ping():
            for msg in msgs:
                await msg.nak(delay=2.0)
            return
        for msg in msgs:
            if msg.metadata.num_delivered < limit:
                await msg.nak(delay=0.5)
        for msg in suspects:
            try:
                outcome = await traced_process(self.pipeline, [msg])
            except Exception as single:
                if isinstance(single, TimeSeriesError) or not await self.pipeline.writer.ping():
                    await msg.nak(delay=2.0)
                    continue
                reason = f"failed {msg.metadata.num_delivered} deliveries: {brief_error(single)}"
                await self._dead_letter(js, msg, reason)
                continue
            await self._settle(js, [msg], outcome)

    async def _dead_letter(self, js: JetStreamContext, msg: Msg, reason: str) -> bool:
        s = self.settings
        rest = msg.subject.removeprefix(f"{s.usage_subject_prefix}.")
        seq = msg.metadata.sequence.stream
        msg_id = (msg.headers or {}).get("Nats-Msg-Id") or f"seq-{seq}"
        headers = {
            "Nats-Msg-Id": f"deadletter-{s.nats_stream}-{seq}",
            "Switchyard-Original-Subject": msg.subject,
            "Switchyard-Original-Msg-Id": msg_id,
            "Switchyard-Dead-Letter-Reason": " ".join(reason.split())[:1000],
        }
        letter = DeadLetter(
            id=f"{s.nats_stream}-{seq}",
            subject=msg.subject,
            msg_id=msg_id,
            reason=reason,
            deliveries=msg.metadata.num_delivered,
            payload=msg.data,
        )
        try:
            # The table first: it is what the control plane's API lists.
            await self.pipeline.writer.record_dead_letters([letter])
        except Exception as exc:
            log.error("recording dead letter %s failed (%s); redelivering", msg_id, brief_error(exc))
            await msg.nak(delay=5.0)
            return False
        try:
            if not self._dead_letter_ready:
                await ensure_dead_letter_stream(js, s)
                self._dead_letter_ready = True
            await js.publish(f"{s.dead_letter_prefix}.{rest}", msg.data, headers=headers)
        except Exception as exc:
            self._dead_letter_ready = False
            log.error("dead-lettering usage message %s failed (%s); redelivering", msg_id, exc)
            await msg.nak(delay=5.0)
            return False
        await msg.term()
        self.pipeline.metrics.dead_lettered.inc()
        log.warning("usage message %s dead-lettered: %s", msg_id, reason)
        return True
