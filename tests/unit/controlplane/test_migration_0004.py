"""Migration 0004 (usage rollups) on a ledger holding 0002-era rows, on SQLite:
the new columns get neutral values and the rollups are filled from the ledger.

`check_0004_upgrade` is shared with the Postgres integration test."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from switchyard_common.db import make_engine
from switchyard_controlplane.migrate import alembic_config, upgrade_database

_INSERT = (
    "INSERT INTO usage_events (id, ts, org, org_id, key_id, capability, model, provider,"
    " upstream_model, status, input_tokens, output_tokens, cached_tokens, reasoning_tokens,"
    " tokens_estimated, cost, currency, latency_ms, ttfb_ms, stream, attempts, ingested_at)"
    " VALUES (:id, :ts, 'acme', 'o1', 'k1', 'llm', :model, 'p1', 'up', :status, 10, 5, 1, 0,"
    " false, 0.25, 'USD', :latency, :ttfb, false, '[]', :ts)"
)
_ROWS = [
    # (id, ts, model, status, latency_ms, ttfb_ms)
    ("e1", "2026-11-01 10:00:05+00:00", "chat", 200, 80.0, 20.0),
    ("e2", "2026-11-01 10:00:59.999+00:00", "chat", 200, 300.0, None),
    ("e3", "2026-11-01 10:00:30+00:00", "chat", 502, 6000.0, None),
    ("e4", "2026-11-01 10:01:00+00:00", "chat", 200, 1000.0, 10.0),
    ("e5", "2026-11-01 10:00:10+00:00", "embed", 200, 40.0, None),
]


def check_0004_upgrade(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0002")
        with engine.begin() as conn:
            for row_id, ts, model, status, latency, ttfb in _ROWS:
                params = {"id": row_id, "ts": ts, "model": model, "status": status}
                conn.execute(text(_INSERT), {**params, "latency": latency, "ttfb": ttfb})
        upgrade_database(url)
        upgrade_database(url)  # a second run is a no-op
        with engine.connect() as conn:
            ledger = conn.execute(
                text(
                    "SELECT cache_write_tokens, images, pages, audio_seconds, characters, unpriced,"
                    " key_name, client_disconnect, refused_by, shadow_refusals"
                    " FROM usage_events WHERE id = 'e1'"
                )
            ).one()
            rollups = conn.execute(
                text(
                    "SELECT minute, model, status, requests, errors, input_tokens, cost, latency_ms_sum,"
                    " ttfb_count, ttfb_ms_sum, le_100ms, le_500ms, le_1s, le_5s, le_10s, le_inf"
                    " FROM usage_rollups_minute ORDER BY minute, model, status"
                )
            ).all()
        assert tuple(ledger[:8]) == (0, 0, 0, 0.0, 0, False, "", False) and ledger[8] is None
        assert ledger[9] in ([], "[]")
        got = [(str(r[0])[:16], *r[1:]) for r in rollups]
        assert got == [
            ("2026-11-01 10:00", "chat", 200, 2, 0, 20, 0.5, 380.0, 1, 20.0, 1, 2, 2, 2, 2, 2),
            ("2026-11-01 10:00", "chat", 502, 1, 1, 10, 0.25, 6000.0, 0, 0.0, 0, 0, 0, 0, 1, 1),
            ("2026-11-01 10:00", "embed", 200, 1, 0, 10, 0.25, 40.0, 0, 0.0, 1, 1, 1, 1, 1, 1),
            ("2026-11-01 10:01", "chat", 200, 1, 0, 10, 0.25, 1000.0, 1, 10.0, 0, 0, 1, 1, 1, 1),
        ]
    finally:
        engine.dispose()


def test_0004_fills_rollups_from_the_ledger_on_sqlite(sqlite_url: str) -> None:
    check_0004_upgrade(sqlite_url)
