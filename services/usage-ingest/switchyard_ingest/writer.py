"""Batch writes of usage events, shared by the JetStream and the in-process paths.

One transaction per batch: the ledger insert (new rows only), the audit rows of those
(ADR 012), the rollup upsert of exactly those rows, and, when a time-series store is
configured, the write of the touched rollup rows' totals to it while those rows are
still locked. The transaction commits only if that write succeeded (ADR 016), so the
caller acks only batches that reached every store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from switchyard_common.audit_store import insert_audit
from switchyard_common.usage import UsageEvent
from switchyard_common.usage_dead_letters import DeadLetter, record_dead_letters
from switchyard_common.usage_rollups import aggregate, upsert_rollups
from switchyard_common.usage_store import insert_new_events

from .timeseries import TimeSeriesWriter

__all__ = ["UsageWriter", "WriteResult", "brief_error", "is_data_error"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    # (index in the batch, reason) of events the database refused for their content
    rejected: list[tuple[int, str]] = field(default_factory=list)
    # ids of the events this write inserted (the others were stored already)
    rollup_rows: int = 0
    timeseries_lines: int = 0


def brief_error(exc: BaseException) -> str:
    """The first line of an error: SQLAlchemy's messages go on with the whole statement,
    which for a batch insert is kilobytes of SQL per log line."""
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0][:500] if lines else ''}"


def is_data_error(exc: BaseException) -> bool:
    """True if the database refused the rows themselves (retrying cannot help), as
    opposed to being unreachable or misconfigured (retrying later can)."""
    # psycopg's own classes too: the COPY of the Postgres ledger path runs on the
    # driver's cursor, outside SQLAlchemy's exception translation.
    if isinstance(exc, DataError | IntegrityError | psycopg.DataError | psycopg.IntegrityError):
        return True
    # A StatementError that is not from the driver failed while binding parameters.
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


class UsageWriter:
    """Writes one batch per transaction; blocking work runs in a worker thread."""

    def __init__(self, engine: Engine, timeseries: TimeSeriesWriter | None = None) -> None:
        self.engine = engine
        self.timeseries = timeseries

    async def write(self, events: Sequence[UsageEvent]) -> WriteResult:
        """Store a batch, all or nothing, unless some rows are refused for their content:
        then each row is written on its own and the refused ones are reported.
        Other errors (database or time-series store unavailable) propagate; nothing is
        committed and the caller retries the whole batch."""
        return await asyncio.to_thread(self._write, list(events))

    def _write(self, events: list[UsageEvent]) -> WriteResult:
        if not events:
            return WriteResult()
        try:
            with self.engine.begin() as conn:
                return self._write_in(conn, events)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            log.warning(
                "usage batch refused (%s); writing its %d events one by one", brief_error(exc), len(events)
            )
        result = WriteResult()
        for index, event in enumerate(events):
            try:
                with self.engine.begin() as conn:
                    single = self._write_in(conn, [event])
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                result.rejected.append((index, brief_error(exc)))
                continue
            result.inserted += single.inserted
            result.duplicates += single.duplicates
            result.rollup_rows += single.rollup_rows
            result.timeseries_lines += single.timeseries_lines
        return result

    def _write_in(self, conn: Connection, events: list[UsageEvent]) -> WriteResult:
        new = insert_new_events(conn, events)
        # Audit rows (redacted headers, compressed bodies) of the audited calls among
        # the new ledger rows, in the same transaction (ADR 012).
        insert_audit(conn, new)
        # With a time-series store, the groups of redelivered events get a zero row too:
        # that reads back (and locks) their totals, which are then rewritten to the store.
        touched: list[UsageEvent] = []
        if self.timeseries is not None and len(new) < len(events):
            inserted = {event.id for event in new}
            touched = [event for event in events if event.id not in inserted]
        rows = aggregate(new, touched=touched)
        totals = upsert_rollups(conn, rows)
        lines = self.timeseries.write(totals) if self.timeseries is not None else 0
        return WriteResult(
            inserted=len(new),
            duplicates=len(events) - len(new),
            rollup_rows=len(totals),
            timeseries_lines=lines,
        )

    async def record_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        def _record() -> int:
            with self.engine.begin() as conn:
                return record_dead_letters(conn, letters)

        return await asyncio.to_thread(_record)

    async def ping(self) -> bool:
        def _ping() -> None:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(_ping), timeout=3)
        except Exception:
            return False
        return True

    def close(self) -> None:
        if self.timeseries is not None:
            self.timeseries.close()
