"""Audit rows written next to the ledger, queried and purged through the admin API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy import Engine, func, select
from switchyard_common.audit_store import audit_log, insert_audit
from switchyard_common.usage import Attempt, UsageEvent
from switchyard_common.usage_store import insert_events, usage_events


def _event(
    event_id: str, org_id: str, *, level: str | None, ts: float, status: int = 200, **extra: object
) -> UsageEvent:
    return UsageEvent(
        id=event_id,
        ts=ts,
        org="acme",
        org_id=org_id,
        key_id="k1",
        capability="llm",
        model="chat",
        provider="up",
        upstream_model="m",
        status=status,
        attempts=[Attempt("other", "m", "error", 3.0, 503), Attempt("up", "m", "ok", 9.0, 200)],
        client_ip="10.0.0.9",
        trace_id="ab" * 16,
        audit_level=level,
        **extra,  # type: ignore[arg-type]
    )


async def _org_id(admin: httpx.AsyncClient, retention_days: int = 7) -> str:
    created = await admin.post(
        "/api/v1/organizations",
        json={"name": "acme", "policy": {"audit": "full", "audit_retention_days": retention_days}},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _store(engine: Engine, events: list[UsageEvent]) -> None:
    with engine.begin() as conn:
        insert_events(conn, events)
        insert_audit(conn, events)


async def test_full_audit_keeps_bodies_and_metadata(admin: httpx.AsyncClient, engine: Engine) -> None:
    org_id = await _org_id(admin)
    now = time.time()
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "Hi"}}],
    }
    stream = f"data: {orjson.dumps(chunk).decode()}\n\ndata: [DONE]\n\n"
    _store(
        engine,
        [
            _event(
                "e-full",
                org_id,
                level="full",
                ts=now,
                stream=True,
                request_headers={"authorization": "[REDACTED]", "user-agent": "sdk"},
                request_body='{"model": "chat"}',
                response_body=stream,
                response_truncated=True,
            ),
            _event("e-meta", org_id, level="metadata", ts=now - 1, status=429),
            _event("e-off", org_id, level=None, ts=now - 2),
        ],
    )
    listed = (await admin.get("/api/v1/audit", params={"org": "acme"})).json()
    assert [row["id"] for row in listed["data"]] == ["e-full", "e-meta"]  # newest first, e-off not audited
    meta = listed["data"][1]
    assert meta["level"] == "metadata" and meta["client_ip"] == "10.0.0.9" and meta["trace_id"] == "ab" * 16
    assert [a["outcome"] for a in meta["attempts"]] == ["error", "ok"]
    assert "request_body" not in meta

    errors = (await admin.get("/api/v1/audit", params={"errors_only": "true"})).json()["data"]
    assert [row["id"] for row in errors] == ["e-meta"]
    by_status = (
        await admin.get("/api/v1/audit", params={"status": 200, "model": "chat", "key_id": "k1"})
    ).json()
    assert [row["id"] for row in by_status["data"]] == ["e-full"]

    one = (await admin.get("/api/v1/audit/e-full")).json()
    assert one["request_body"] == '{"model": "chat"}'
    assert orjson.loads(one["response_body"])["choices"][0]["message"]["content"] == "Hi"
    assert one["response_reassembled"] is True and one["response_truncated"] is True
    assert one["request_headers"]["authorization"] == "[REDACTED]"
    missing = await admin.get("/api/v1/audit/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "audit_not_found"


async def test_paging_with_cursor(admin: httpx.AsyncClient, engine: Engine) -> None:
    org_id = await _org_id(admin)
    now = time.time()
    _store(engine, [_event(f"e{i}", org_id, level="metadata", ts=now - i) for i in range(5)])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.get("/api/v1/audit", params=params)).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["e0", "e1", "e2", "e3", "e4"]
    assert (await admin.get("/api/v1/audit", params={"cursor": "garbage"})).status_code == 400


async def test_purge_applies_each_orgs_retention_and_keeps_the_ledger(
    admin: httpx.AsyncClient, engine: Engine
) -> None:
    org_id = await _org_id(admin, retention_days=2)
    now = datetime.now(UTC)
    _store(
        engine,
        [
            _event("old", org_id, level="metadata", ts=(now - timedelta(days=3)).timestamp()),
            _event("new", org_id, level="metadata", ts=(now - timedelta(days=1)).timestamp()),
        ],
    )
    result = (await admin.post("/api/v1/audit/purge")).json()
    assert result == {"deleted": {"acme": 1}}
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(audit_log.c.event_id)).all()) == ["new"]
        assert conn.scalar(select(func.count()).select_from(usage_events)) == 2  # billing untouched
    assert (await admin.post("/api/v1/audit/purge")).json() == {"deleted": {}}


async def test_redelivered_events_do_not_duplicate_audit_rows(
    admin: httpx.AsyncClient, engine: Engine
) -> None:
    org_id = await _org_id(admin)
    event = _event("dup", org_id, level="full", ts=time.time(), request_body="{}")
    _store(engine, [event])
    _store(engine, [event])
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(audit_log)) == 1


async def test_audit_needs_an_admin(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/audit")).status_code == 401


def test_audit_row_and_ledger_row_carry_the_same_instant() -> None:
    """Paging compares the cursor (taken from a listed row) with the audit row's time, so
    both rows of a call must round the event time identically: these times round up to
    the next microsecond in the ledger but would be truncated by `datetime.fromtimestamp`."""
    from switchyard_common.audit_store import audit_row
    from switchyard_common.usage_store import event_to_row

    for ts in (1795000945.2706954, 1795000422.1165755, 1795000029.0407875):
        event = _event("e", "o", level="metadata", ts=ts)
        audit = audit_row(event)
        assert audit is not None and audit["ts"] == event_to_row(event)["ts"]
