"""How far the ingest is behind the data planes, measured when /metrics is scraped.

JetStream knows: the durable consumer's `num_pending` (stored, not yet delivered to any
replica) and `num_ack_pending` (delivered, not acknowledged), and its ack floor, the
last stream sequence below which everything is acknowledged. The oldest unacknowledged
event is the first message of our subjects after that floor; its age is the time since
JetStream stored it. Every replica shares the durable consumer, so each reports the
same figures. Two small requests per scrape, none on the consume path.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from nats.aio.client import Client as NatsClient

from .metrics import IngestMetrics
from .settings import IngestSettings

__all__ = ["probe_jetstream_lag"]

# A scrape must not hang on a sick NATS: the gauges then keep their last values.
_PROBE_TIMEOUT = 2.0


async def probe_jetstream_lag(
    nc: NatsClient | None, settings: IngestSettings, metrics: IngestMetrics
) -> bool:
    """Refresh the lag gauges; False (and the error counter) when NATS did not answer."""
    if nc is None or not nc.is_connected:
        metrics.lag_probe_errors.inc()
        return False
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            js = nc.jetstream(timeout=_PROBE_TIMEOUT)
            info = await js.consumer_info(settings.nats_stream, settings.nats_durable)
            pending = info.num_pending or 0
            unacked = info.num_ack_pending or 0
            age = 0.0
            if pending or unacked:
                floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
                oldest = await js.get_msg(
                    settings.nats_stream,
                    seq=(floor or 0) + 1,
                    subject=f"{settings.usage_subject_prefix}.>",
                    next=True,
                )
                if isinstance(oldest.time, datetime):
                    age = max(0.0, time.time() - oldest.time.timestamp())
    except Exception:
        metrics.lag_probe_errors.inc()
        return False
    metrics.pending.set(pending)
    metrics.ack_pending.set(unacked)
    metrics.oldest_unacked_age.set(age)
    return True
