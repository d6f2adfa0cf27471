"""Batch writes of usage events, shared by the JetStream and the in-process paths."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from switchyard_common.usage import UsageEvent
from switchyard_common.usage_store import insert_events

__all__ = ["UsageWriter", "WriteResult", "is_data_error"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    # (index in the batch, reason) of events the database refused for their content
    rejected: list[tuple[int, str]] = field(default_factory=list)


def is_data_error(exc: BaseException) -> bool:
    """True if the database refused the rows themselves (retrying cannot help), as
    opposed to being unreachable or misconfigured (retrying later can)."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    # A StatementError that is not from the driver failed while binding parameters.
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


class UsageWriter:
    """Writes one batch per transaction; blocking DB work runs in a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def write(self, events: Sequence[UsageEvent]) -> WriteResult:
        """Store a batch, all or nothing, unless some rows are refused for their content:
        then each row is written on its own and the refused ones are reported.
        Other database errors propagate; nothing is committed and the caller retries."""
        return await asyncio.to_thread(self._write, list(events))

    def _write(self, events: list[UsageEvent]) -> WriteResult:
        if not events:
            return WriteResult()
        try:
            with self.engine.begin() as conn:
                inserted = insert_events(conn, events)
            return WriteResult(inserted=inserted, duplicates=len(events) - inserted)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            log.warning("usage batch refused (%s); writing its %d events one by one", exc, len(events))
        result = WriteResult()
        for index, event in enumerate(events):
            try:
                with self.engine.begin() as conn:
                    inserted = insert_events(conn, [event])
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                result.rejected.append((index, str(exc).splitlines()[0][:500]))
                continue
            result.inserted += inserted
            result.duplicates += 1 - inserted
        return result

    async def ping(self) -> bool:
        def _ping() -> None:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(_ping), timeout=3)
        except Exception:
            return False
        return True
