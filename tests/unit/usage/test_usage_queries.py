"""Usage totals, time series and billing summaries over the per-minute rollups, on
SQLite and on Postgres (rollup rows made from events by the ingest's own aggregation)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from switchyard_common.db import METADATA, make_engine
from switchyard_common.usage import UsageEvent
from switchyard_common.usage_queries import (
    billing_summary,
    parse_group_by,
    query_timeseries,
    query_totals,
)
from switchyard_common.usage_rollups import aggregate, usage_rollups_minute

from tests.conftest import pg_database

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


def event(n: int, at: timedelta, **overrides: object) -> UsageEvent:
    values: dict[str, object] = {
        "id": f"e{n}",
        "ts": (T0 + at).timestamp(),
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
        "ttfb_ms": 40.0,
    }
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


EVENTS = [
    event(1, timedelta(seconds=5)),
    event(2, timedelta(seconds=50), latency_ms=300.0, ttfb_ms=None),
    event(3, timedelta(minutes=1, seconds=1), status=502, input_tokens=0, output_tokens=0, cost=0.0),
    event(4, timedelta(minutes=75), model="embed", capability="embedding", provider="p2", output_tokens=0),
    event(5, timedelta(hours=2), key_id="key-2", cached_tokens=4, cache_write_tokens=2, reasoning_tokens=1),
    event(6, timedelta(days=1, hours=1), org="globex", org_id="org-2", key_id="key-9", cost=2.0),
    event(7, timedelta(minutes=2), model="eu-chat", currency="EUR", cost=0.25),
    event(8, timedelta(minutes=3), model="free-chat", cost=0.0, unpriced=True),
    event(9, timedelta(minutes=4), model="painter", capability="image", images=3, cost=0.12, input_tokens=0),
    event(10, timedelta(minutes=4), model="ocr", capability="ocr", pages=7, input_tokens=0, output_tokens=0),
    event(11, timedelta(minutes=4), model="asr", capability="asr", audio_seconds=12.5, input_tokens=0),
    event(12, timedelta(minutes=4), model="tts", capability="tts", characters=900, input_tokens=0),
]


def _engine(url: str) -> Engine:
    engine = make_engine(url)
    METADATA.create_all(engine, tables=[usage_rollups_minute])
    with engine.begin() as conn:
        conn.execute(usage_rollups_minute.insert(), [row.as_row() for row in aggregate(EVENTS)])
    return engine


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = _engine(sqlite_url)
        yield engine
        engine.dispose()
        return
    request.getfixturevalue("services")
    with pg_database() as url:
        engine = _engine(url)
        yield engine
        engine.dispose()


WHOLE = {"start": T0, "end": T0 + timedelta(days=2)}


def test_totals_by_model_split_per_currency(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = query_totals(conn, **WHOLE, group_by=["model"], filters={"org": "acme"})
    by_model = {(r["model"], r["currency"]): r for r in rows}
    assert [r["model"] for r in rows] == sorted(r["model"] for r in rows)
    chat = by_model[("chat", "USD")]
    assert (chat["requests"], chat["errors"], chat["input_tokens"], chat["output_tokens"]) == (4, 1, 30, 15)
    assert (chat["cached_tokens"], chat["cache_write_tokens"], chat["reasoning_tokens"]) == (4, 2, 1)
    assert chat["cost"] == pytest.approx(1.5)
    assert chat["avg_latency_ms"] == pytest.approx((100 + 300 + 100 + 100) / 4)
    assert chat["avg_ttfb_ms"] == pytest.approx(40.0)  # the call without a TTFB is not averaged in
    assert (chat["p50_latency_ms"], chat["p95_latency_ms"]) == (100.0, 500.0)
    assert by_model[("eu-chat", "EUR")]["cost"] == pytest.approx(0.25)
    assert by_model[("free-chat", "USD")]["unpriced_requests"] == 1
    assert by_model[("painter", "USD")]["images"] == 3
    assert by_model[("ocr", "USD")]["pages"] == 7
    assert by_model[("asr", "USD")]["audio_seconds"] == pytest.approx(12.5)
    assert by_model[("tts", "USD")]["characters"] == 900
    assert all(r.get("org") is None for r in rows)  # not a group: not a column


def test_totals_by_several_dimensions_and_filters(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = query_totals(conn, **WHOLE, group_by=["org", "key", "capability"])
        by_provider = query_totals(conn, **WHOLE, group_by=["provider"], filters={"capability": "embedding"})
        overall = query_totals(conn, **WHOLE, group_by=[])
    keys = {(r["org"], r["key_id"], r["capability"], r["currency"]): r["requests"] for r in rows}
    assert keys[("acme", "key-1", "llm", "USD")] == 4
    assert keys[("acme", "key-2", "llm", "USD")] == 1
    assert keys[("globex", "key-9", "llm", "USD")] == 1
    assert [(r["provider"], r["requests"]) for r in by_provider] == [("p2", 1)]
    assert {r["currency"]: r["requests"] for r in overall} == {"EUR": 1, "USD": 11}


def test_time_range_selects_whole_minutes(engine: Engine) -> None:
    with engine.connect() as conn:
        # Starting mid-minute still counts the minute's calls; `end` excludes the minute
        # starting at it.
        rows = query_totals(
            conn, start=T0 + timedelta(seconds=30), end=T0 + timedelta(minutes=1), group_by=["model"]
        )
    assert [(r["model"], r["requests"]) for r in rows] == [("chat", 2)]


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        ("minute", [(T0, 2), (T0 + timedelta(minutes=1), 1), (T0 + timedelta(hours=2), 1)]),
        ("hour", [(T0, 3), (T0 + timedelta(hours=2), 1)]),
        ("day", [(T0.replace(hour=0), 4)]),
    ],
)
def test_timeseries_buckets(engine: Engine, granularity: str, expected: list[tuple[datetime, int]]) -> None:
    with engine.connect() as conn:
        rows = query_timeseries(
            conn,
            start=T0,
            end=T0 + timedelta(hours=3),
            granularity=granularity,  # type: ignore[arg-type]
            filters={"model": "chat"},
        )
    assert [(r["bucket"], r["requests"]) for r in rows] == expected
    assert all(r["bucket"].tzinfo is not None for r in rows)


def test_timeseries_grouped(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = query_timeseries(conn, **WHOLE, granularity="day", group_by=["org", "model"])
    got = [(r["bucket"].day, r["org"], r["model"], r["currency"], r["requests"]) for r in rows]
    assert got[:2] == [(3, "acme", "asr", "USD", 1), (3, "acme", "chat", "USD", 4)]
    assert got[-1] == (4, "globex", "chat", "USD", 1)


def test_billing_summary_lines_and_totals_per_currency(engine: Engine) -> None:
    with engine.connect() as conn:
        summary = billing_summary(
            conn, org="acme", start=T0.replace(day=1, hour=0), end=T0 + timedelta(days=30)
        )
    lines = {(line["model"], line["currency"]): line for line in summary.lines}
    assert set(lines) == {
        ("asr", "USD"),
        ("chat", "USD"),
        ("embed", "USD"),
        ("eu-chat", "EUR"),
        ("free-chat", "USD"),
        ("ocr", "USD"),
        ("painter", "USD"),
        ("tts", "USD"),
    }
    totals = summary.as_dict()["totals"]
    assert [t["currency"] for t in totals] == ["EUR", "USD"]
    assert totals[0]["cost"] == pytest.approx(0.25)
    assert totals[1]["cost"] == pytest.approx(0.5 * 3 + 0.5 + 0.12 + 0.5 * 3)
    assert (totals[1]["requests"], totals[1]["unpriced_requests"]) == (10, 1)
    with engine.connect() as conn:
        other = billing_summary(conn, org="globex", start=T0, end=T0 + timedelta(days=2))
    assert [(line["model"], line["cost"]) for line in other.lines] == [("chat", 2.0)]


def test_group_by_parsing() -> None:
    assert parse_group_by(["org,model", "key", "model"]) == ["org", "model", "key"]
    assert parse_group_by([]) == []
    with pytest.raises(ValueError, match="planet"):
        parse_group_by(["planet"])
