"""Per-minute rollups: aggregation of events, and the upsert on SQLite (embedded mode)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from switchyard_common.db import METADATA, make_engine
from switchyard_common.usage_rollups import (
    SUM_COLUMNS,
    RollupRow,
    aggregate,
    minute_start,
    ts_micros,
    upsert_rollups,
    usage_rollups_minute,
)
from switchyard_common.usage_store import USAGE_TABLES, event_to_row, insert_new_events, usage_events

from .test_usage_store import T0, make_event


def _sums(row: RollupRow) -> dict[str, float]:
    return dict(zip(SUM_COLUMNS, row.sums, strict=True))


def test_aggregate_sums_every_unit_per_group() -> None:
    events = [
        make_event(1, latency_ms=90.0, ttfb_ms=30.0, cache_write_tokens=7, unpriced=True),
        make_event(2, latency_ms=250.0, status=502, images=2, pages=3, audio_seconds=1.5, characters=40),
        make_event(3, latency_ms=12_000.0, reasoning_tokens=11, cached_tokens=4),
    ]
    rows = aggregate(events)
    minute = int(T0.timestamp())
    assert [row.key for row in rows] == [
        (minute, "acme", "org-1", "key-1", "chat", "p1", "llm", status, "USD") for status in (200, 502)
    ]
    by_status = {r.key[7]: _sums(r) for r in rows}
    assert set(by_status) == {200, 502}
    ok, failed = by_status[200], by_status[502]
    assert ok["requests"] == 2 and ok["errors"] == 0
    assert failed["requests"] == 1 and failed["errors"] == 1
    assert ok["input_tokens"] == 20 and ok["output_tokens"] == 10
    assert ok["cached_tokens"] == 4 and ok["reasoning_tokens"] == 11 and ok["cache_write_tokens"] == 7
    assert failed["images"] == 2 and failed["pages"] == 3 and failed["characters"] == 40
    assert failed["audio_seconds"] == 1.5
    assert ok["unpriced_requests"] == 1 and failed["unpriced_requests"] == 0
    assert ok["cost"] == pytest.approx(1.0) and ok["latency_ms_sum"] == pytest.approx(12_090.0)
    assert ok["ttfb_count"] == 1 and ok["ttfb_ms_sum"] == 30.0


def test_latency_buckets_are_cumulative() -> None:
    latencies = [50.0, 100.0, 100.5, 600.0, 2_500.0, 9_999.0, 60_000.0]
    rows = aggregate([make_event(i, latency_ms=ms) for i, ms in enumerate(latencies)])
    (sums,) = [_sums(r) for r in rows]
    assert [sums[name] for name in ("le_100ms", "le_250ms", "le_500ms", "le_1s")] == [2, 3, 3, 4]
    assert [sums[name] for name in ("le_2500ms", "le_5s", "le_10s", "le_inf")] == [5, 5, 6, 7]
    assert sums["le_inf"] == sums["requests"]


def test_groups_split_by_minute_and_are_sorted() -> None:
    events = [make_event(n, model=model) for n, model in ((70, "b"), (5, "b"), (65, "a"), (1, "a"))]
    keys = [row.key for row in aggregate(events)]
    assert keys == sorted(keys)
    minute = int(T0.timestamp())
    assert [(k[0] - minute, k[4]) for k in keys] == [(0, "a"), (0, "b"), (60, "a"), (60, "b")]


def test_touched_groups_get_zero_rows() -> None:
    new = [make_event(1)]
    old = [make_event(2, model="other"), make_event(3)]
    rows = aggregate(new, touched=old)
    sums = {row.key[4]: _sums(row)["requests"] for row in rows}
    assert sums == {"chat": 1, "other": 0}


def test_minute_and_ledger_ts_share_one_rounding() -> None:
    # 0.4 us before a minute boundary: the ledger rounds to the boundary, so must the rollup.
    boundary = T0.timestamp() + 60
    event = make_event(1, ts=boundary - 0.0000004)
    assert ts_micros(event.ts) == int(boundary) * 1_000_000
    assert minute_start(event.ts) == int(boundary)
    assert event_to_row(event)["ts"] == datetime.fromtimestamp(boundary, UTC)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    METADATA.create_all(engine, tables=USAGE_TABLES)
    yield engine
    engine.dispose()


def test_sqlite_upsert_adds_and_returns_totals(engine: Engine) -> None:
    first = aggregate([make_event(1), make_event(2, status=500)])
    with engine.begin() as conn:
        stored = upsert_rollups(conn, first)
    assert [_sums(r)["requests"] for r in stored] == [1, 1]
    assert all(r.revision == 1 for r in stored)
    with engine.begin() as conn:
        again = upsert_rollups(conn, aggregate([make_event(3), make_event(4)]))
    (row,) = again
    assert row.key[7] == 200 and _sums(row)["requests"] == 3 and row.revision == 2
    assert _sums(row)["input_tokens"] == 30
    with engine.begin() as conn:
        (zero,) = upsert_rollups(conn, aggregate([], touched=[make_event(9)]))
    assert _sums(zero)["requests"] == 3 and zero.revision == 3
    assert datetime.fromtimestamp(zero.key[0], UTC) == T0


def test_rollups_follow_only_new_ledger_rows(engine: Engine) -> None:
    events = [make_event(n, key_id=f"key-{n % 2}") for n in range(10)]
    for batch in (events[:6], events[3:], events):  # overlapping redeliveries
        with engine.begin() as conn:
            upsert_rollups(conn, aggregate(insert_new_events(conn, batch)))
    with engine.connect() as conn:
        ledger = conn.execute(select(func.count(), func.sum(usage_events.c.input_tokens))).one()
        rolled = conn.execute(
            select(func.sum(usage_rollups_minute.c.requests), func.sum(usage_rollups_minute.c.input_tokens))
        ).one()
    assert tuple(ledger) == (10, 100)
    assert tuple(rolled) == (10, 100)


def test_rollup_row_round_trip() -> None:
    (row,) = aggregate([make_event(1)])
    stored = {**row.as_row(), "revision": 4}
    back = RollupRow.from_row(stored)
    assert back.key == row.key and back.sums == row.sums and back.revision == 4
    assert stored["minute"] == T0.replace(second=0) and isinstance(stored["requests"], int)
    assert stored["minute"] - T0 < timedelta(minutes=1)
