"""usage_store on SQLite: idempotent inserts, grouping, listing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select
from switchyard_common.db import METADATA, make_engine
from switchyard_common.usage import Attempt, UsageEvent
from switchyard_common.usage_store import USAGE_TABLES, insert_events, list_events, query_usage, usage_events

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_event(n: int, **overrides: object) -> UsageEvent:
    values: dict[str, object] = {
        "id": f"00000000-0000-7000-8000-{n:012d}",
        "ts": (T0 + timedelta(seconds=n)).timestamp(),
        "org": "acme",
        "org_id": "org-1",
        "key_id": "key-1",
        "capability": "llm",
        "model": "chat",
        "provider": "p1",
        "upstream_model": "up-chat",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": 0.5,
        "latency_ms": 100.0,
        "attempts": [Attempt("p1", "up-chat", "ok", 99.0)],
    }
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    METADATA.create_all(engine, tables=USAGE_TABLES)
    yield engine
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(usage_events)) or 0)


def test_insert_is_idempotent_on_event_id(engine: Engine) -> None:
    events = [make_event(i) for i in range(5)]
    with engine.begin() as conn:
        assert insert_events(conn, events) == 5
    with engine.begin() as conn:
        assert insert_events(conn, events[2:] + [make_event(5)]) == 1
    with engine.begin() as conn:
        # the same id twice in one batch is one row
        assert insert_events(conn, [make_event(6), make_event(6)]) == 1
        assert insert_events(conn, []) == 0
    assert _count(engine) == 7


def test_row_round_trip(engine: Engine) -> None:
    event = make_event(1, stream=True, ttfb_ms=12.5, error_type=None, trace_id="t-1")
    with engine.begin() as conn:
        insert_events(conn, [event])
    with engine.connect() as conn:
        (row,) = list_events(conn, start=T0, end=T0 + timedelta(hours=1), limit=10)
    assert row["id"] == event.id
    assert row["ts"] == T0 + timedelta(seconds=1)
    assert row["ts"].tzinfo is not None
    assert row["stream"] is True and row["ttfb_ms"] == 12.5
    attempt = {"provider": "p1", "model": "up-chat", "outcome": "ok", "ms": 99.0, "status": None}
    assert row["attempts"] == [attempt]
    assert row["ingested_at"].tzinfo is not None


def test_query_groups_and_window(engine: Engine) -> None:
    events = [
        make_event(1, model="a", key_id="k1", input_tokens=10, output_tokens=1, cost=1.0, latency_ms=100.0),
        make_event(2, model="a", key_id="k2", status=500, input_tokens=20, cached_tokens=3, latency_ms=300.0),
        make_event(3, model="b", key_id="k1", org="other", status=429, reasoning_tokens=7, cost=0.25),
        make_event(4000, model="a"),  # outside the window below
    ]
    with engine.begin() as conn:
        insert_events(conn, events)
    start, end = T0, T0 + timedelta(seconds=60)
    with engine.connect() as conn:
        by_model = query_usage(conn, start=start, end=end, group_by="model")
        by_key = query_usage(conn, start=start, end=end, group_by="key")
        by_org = query_usage(conn, start=start, end=end, group_by="org")
        acme_only = query_usage(conn, start=start, end=end, group_by="model", org="acme")
    assert by_model == [
        {
            "model": "a",
            "requests": 2,
            "errors": 1,
            "input_tokens": 30,
            "output_tokens": 6,
            "cached_tokens": 3,
            "reasoning_tokens": 0,
            "cost": 1.5,
            "avg_latency_ms": 200.0,
        },
        {
            "model": "b",
            "requests": 1,
            "errors": 1,
            "input_tokens": 10,
            "output_tokens": 5,
            "cached_tokens": 0,
            "reasoning_tokens": 7,
            "cost": 0.25,
            "avg_latency_ms": 100.0,
        },
    ]
    assert [(r["key_id"], r["requests"]) for r in by_key] == [("k1", 2), ("k2", 1)]
    assert [(r["org"], r["requests"]) for r in by_org] == [("acme", 2), ("other", 1)]
    assert [r["model"] for r in acme_only] == ["a"]
    with pytest.raises(ValueError), engine.connect() as conn:
        query_usage(conn, start=start, end=end, group_by="provider")  # type: ignore[arg-type]


def test_window_bounds_accept_any_timezone(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_events(conn, [make_event(0), make_event(10)])
    plus_two = timezone(timedelta(hours=2))
    start = (T0 + timedelta(seconds=5)).astimezone(plus_two)
    with engine.connect() as conn:
        rows = list_events(conn, start=start, end=start + timedelta(minutes=1), limit=10)
        naive = list_events(conn, start=T0.replace(tzinfo=None), end=T0 + timedelta(seconds=1), limit=10)
    assert [r["id"] for r in rows] == [make_event(10).id]
    assert [r["id"] for r in naive] == [make_event(0).id]


def test_list_events_order_and_limit(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_events(conn, [make_event(i) for i in (5, 1, 3, 2, 4)])
    with engine.connect() as conn:
        rows = list_events(conn, start=T0, end=T0 + timedelta(minutes=1), limit=3)
    assert [r["id"][-1] for r in rows] == ["1", "2", "3"]
