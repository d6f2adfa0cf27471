"""GET /api/v1/usage/dead-letters lists what the ingest recorded in usage_dead_letters."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine
from switchyard_common.usage_dead_letters import DeadLetter, record_dead_letters

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _letter(n: int, payload: bytes = b'{"id": "broken"') -> DeadLetter:
    return DeadLetter(
        id=f"USAGE-{n}",
        subject="usage.acme",
        msg_id=f"evt-{n}",
        reason=f"undecodable usage event #{n}",
        deliveries=n,
        payload=payload,
        created_at=T0 + timedelta(minutes=n),
    )


async def test_dead_letters_need_an_admin(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/usage/dead-letters")
    assert response.status_code == 401


async def test_dead_letters_newest_first_with_payload(admin: httpx.AsyncClient, engine: Engine) -> None:
    binary = b"\xff\xfe not utf-8"
    with engine.begin() as conn:
        assert record_dead_letters(conn, [_letter(1), _letter(2, binary), _letter(3)]) == 3
        assert record_dead_letters(conn, [_letter(3)]) == 0  # recorded once
    body = (await admin.get("/api/v1/usage/dead-letters")).json()
    assert body["total"] == 3
    assert [item["id"] for item in body["items"]] == ["USAGE-3", "USAGE-2", "USAGE-1"]
    second = body["items"][1]
    assert second["reason"] == "undecodable usage event #2" and second["deliveries"] == 2
    assert base64.b64decode(second["payload_base64"]) == binary
    assert second["payload"].endswith(" not utf-8") and second["subject"] == "usage.acme"

    page = (
        await admin.get("/api/v1/usage/dead-letters", params={"limit": 1, "before": second["created_at"]})
    ).json()
    assert [item["id"] for item in page["items"]] == ["USAGE-1"]
    assert (await admin.get("/api/v1/usage/dead-letters", params={"limit": 0})).status_code in (400, 422)
