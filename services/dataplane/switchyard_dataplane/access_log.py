"""The optional per-call log line (`SWITCHYARD_ACCESS_LOG=true`, logger `switchyard.access`).

Off by default: the hot path then pays `ACCESS.isEnabledFor(INFO)` (a cached level
check) and builds nothing. The line is emitted inside the call, so it carries the
call's request id and trace id (switchyard_common.logs).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from switchyard_common.logs import ACCESS_LOGGER

if TYPE_CHECKING:
    from .usage_events import CallRecord

__all__ = ["ACCESS", "log_call"]

ACCESS = logging.getLogger(ACCESS_LOGGER)


def log_call(route: str, record: CallRecord, started: float) -> None:
    """One INFO line describing a finished call (`extra` fields become JSON members)."""
    latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
    ACCESS.info(
        "%s %s -> %d (%s, %.1f ms)",
        route,
        record.model or "-",
        record.status,
        record.provider or "-",
        latency_ms,
        extra={
            "route": route,
            "status": record.status,
            "model": record.model,
            "provider": record.provider,
            "org": record.key.org_name,
            "key_id": record.key.id,
            "latency_ms": latency_ms,
            "attempts": len(record.attempts),
            "error_type": record.error_type,
        },
    )
