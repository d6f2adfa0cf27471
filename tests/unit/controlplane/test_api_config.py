"""Config apply/export and the snapshot/usage endpoints through the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Connection, Engine
from switchyard_common.usage import UsageEvent
from switchyard_common.usage_rollups import aggregate, upsert_rollups
from switchyard_common.usage_store import insert_new_events

DOC = {
    "organizations": [{"name": "acme"}],
    "providers": [{"slug": "mock", "api_format": "mock"}],
    "models": [{"name": "chat", "targets": [{"provider": "mock", "model": "echo"}]}],
    "keys": [{"name": "svc", "org": "acme"}],
}


async def test_apply_export_round_trip(admin: httpx.AsyncClient) -> None:
    dry = await admin.post("/api/v1/config/apply", json={"document": DOC, "dry_run": True})
    assert dry.status_code == 200 and dry.json()["changed"] is True and dry.json()["version"] == 0

    first = (await admin.post("/api/v1/config/apply", json={"document": DOC})).json()
    assert first["changed"] is True and first["version"] == 1
    # No price anywhere: the price-table check warns that `chat` is billed at 0.
    assert [(w["model"], w["missing_units"], w["unpriced_targets"]) for w in first["warnings"]] == [
        ("chat", ["input_token", "output_token"], ["mock/echo"])
    ]
    assert [c["action"] for c in first["changes"]] == ["create"] * 4
    assert first["created_keys"][0]["org"] == "acme" and first["created_keys"][0]["key"].startswith("gk_")

    second = (await admin.post("/api/v1/config/apply", json={"document": DOC})).json()
    assert second["changed"] is False and second["created_keys"] == [] and second["version"] == 1

    exported = (await admin.get("/api/v1/config/export")).json()
    # Short: defaults are left out, except the scopes a reader needs to see.
    assert exported["keys"] == [{"name": "svc", "org": "acme", "scopes": ["llm"]}]
    assert exported["models"] == [
        {"name": "chat", "capability": "llm", "targets": [{"provider": "mock", "model": "echo"}]}
    ]
    third = (await admin.post("/api/v1/config/apply", json={"document": exported})).json()
    assert third["changed"] is False

    snapshot = (await admin.get("/api/v1/snapshot")).json()
    assert snapshot["version"] == 1


async def test_apply_reports_config_errors(admin: httpx.AsyncClient) -> None:
    bad = {"providers": [{"slug": "x", "api_format": "nope"}], "models": [{"name": "m", "targets": []}]}
    response = await admin.post("/api/v1/config/apply", json={"document": bad})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "config_error"
    assert {i["path"] for i in error["issues"]} == {"providers[0].api_format", "models[0].targets"}

    dangling = {"keys": [{"name": "k", "org": "ghost"}]}
    response = await admin.post("/api/v1/config/apply", json={"document": dangling})
    assert response.status_code == 422
    assert response.json()["error"]["issues"] == [
        {"path": "keys[0].org", "message": "unknown organization 'ghost'"}
    ]


async def test_usage_groups_rows(admin: httpx.AsyncClient, engine: Engine) -> None:
    # The usage API reads the rollups the ingest writes along with the ledger.
    now = datetime.now(UTC)
    event = {
        "ts": now.timestamp(),
        "org": "acme",
        "org_id": "o1",
        "key_id": "k1",
        "capability": "llm",
        "model": "chat",
        "provider": "mock",
        "upstream_model": "echo",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": 0.5,
        "latency_ms": 12.0,
    }
    with engine.begin() as conn:
        insert_new_events_and_rollups(conn, [UsageEvent(id="e1", **event), UsageEvent(id="e2", **event)])  # type: ignore[arg-type]
    params = {
        "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(),
        "group_by": "org",
    }
    response = await admin.get("/api/v1/usage", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == "org"
    assert [(r["org"], r["requests"], r["input_tokens"]) for r in body["rows"]] == [("acme", 2, 20)]

    reversed_range = await admin.get(
        "/api/v1/usage", params={**params, "start": params["end"], "end": params["start"]}
    )
    assert reversed_range.status_code == 400
    bad_group = await admin.get("/api/v1/usage", params={**params, "group_by": "planet"})
    assert bad_group.status_code == 400


def insert_new_events_and_rollups(conn: Connection, events: list[UsageEvent]) -> None:
    """What the ingest writer does per batch: ledger rows, then their rollups."""
    upsert_rollups(conn, aggregate(insert_new_events(conn, events)))
