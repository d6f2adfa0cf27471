"""Ledger and rollup writes on Postgres (COPY + upsert paths): migration 0004's backfill,
redeliveries that add nothing, and concurrent writers on the same groups."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from switchyard_common.audit_store import get_audit
from switchyard_common.db import make_engine
from switchyard_common.usage import Attempt
from switchyard_controlplane.migrate import upgrade_database
from switchyard_ingest.writer import UsageWriter

from ..unit.controlplane.test_migration_0004 import check_0004_upgrade
from ..unit.usage.test_usage_store import make_event

pytestmark = pytest.mark.integration

LEDGER_TOTALS = (
    "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cost), sum(latency_ms),"
    " sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END) FROM usage_events"
)
ROLLUP_TOTALS = (
    "SELECT sum(requests), sum(input_tokens), sum(output_tokens), sum(cost), sum(latency_ms_sum),"
    " sum(errors) FROM usage_rollups_minute"
)


def totals(engine: Engine) -> tuple[tuple[object, ...], tuple[object, ...]]:
    with engine.connect() as conn:
        ledger = tuple(conn.execute(text(LEDGER_TOTALS)).one())
        rolled = tuple(conn.execute(text(ROLLUP_TOTALS)).one())
    return ledger, rolled


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    upgrade_database(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def test_0004_fills_rollups_from_the_ledger_on_postgres(pg_url: str) -> None:
    check_0004_upgrade(pg_url)


def test_copy_path_stores_every_field_once(engine: Engine) -> None:
    event = make_event(
        1,
        cache_write_tokens=3,
        images=2,
        audio_seconds=1.5,
        unpriced=True,
        key_name="svc",
        shadow_refusals=["org.tpm"],
        refused_by=None,
        attempts=[Attempt("p1", "up", "error", 12.5, 502), Attempt("p2", "up2", "ok", 40.0, 200)],
        request_body='it\'s \\ \t a "body"\n',
        ttfb_ms=None,
        audit_level="full",
        request_headers={"content-type": "application/json"},
    )
    writer = UsageWriter(engine)
    first = writer._write([event, make_event(2)])
    again = writer._write([event])
    assert (first.inserted, again.inserted, again.duplicates) == (2, 0, 1)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT cache_write_tokens, images, audio_seconds, unpriced, key_name,"
                " shadow_refusals::text, attempts::text, request_body, ttfb_ms, ts, ingested_at"
                " FROM usage_events WHERE id = :id"
            ),
            {"id": event.id},
        ).one()
    assert row[:5] == (3, 2, 1.5, True, "svc")
    assert row[5] == '["org.tpm"]'
    assert '"status":502' in row[6] and '"outcome":"ok"' in row[6]
    # Bodies are audit data: in audit_log (same transaction), not in the ledger.
    assert row[7] is None and row[8] is None
    assert abs(row[9].timestamp() - event.ts) < 1e-6 and row[10] is not None
    with engine.connect() as conn:
        audited = get_audit(conn, event.id)
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 1
    assert audited is not None and audited["request_body"] == event.request_body


def test_concurrent_writers_on_the_same_groups_neither_deadlock_nor_double(engine: Engine) -> None:
    # Two writers, overlapping batches (redeliveries) on the same rollup rows.
    events = [make_event(n, model=f"m{n % 7}", status=200 if n % 5 else 502) for n in range(600)]
    writers = [UsageWriter(engine), UsageWriter(engine)]
    errors: list[BaseException] = []

    def run(writer: UsageWriter, batches: list[list[object]]) -> None:
        try:
            for batch in batches:
                writer._write(batch)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    forward = [events[i : i + 50] for i in range(0, 600, 50)]
    backward = [events[i : i + 80] for i in range(520, -1, -80)]
    threads = [
        threading.Thread(target=run, args=(w, b)) for w, b in zip(writers, (forward, backward), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ledger, rolled = totals(engine)
    assert ledger[0] == 600
    assert rolled == ledger
