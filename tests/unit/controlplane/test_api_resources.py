"""Admin REST resources on SQLite: CRUD, write-only secrets, error shapes."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from switchyard_common.secrets import hash_api_key
from switchyard_controlplane.db import ApiKey, Provider

PROVIDER = {"slug": "up", "api_format": "openai", "base_url": "https://up.example/", "api_key": "sk-1"}
MODEL = {"name": "chat", "targets": [{"provider": "up", "model": "m1"}]}


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code"} <= set(body["error"])
    return body["error"]


async def test_organization_crud_and_errors(admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        "/api/v1/organizations", json={"name": "acme", "policy": {"audit": "full", "routing": "weighted"}}
    )
    assert created.status_code == 201
    policy = created.json()["policy"]
    assert (policy["audit"], policy["routing"], policy["overflow"]) == ("full", "weighted", "next_target")
    duplicate = await admin.post("/api/v1/organizations", json={"name": "acme"})
    assert duplicate.status_code == 409 and _error(duplicate)["code"] == "organization_exists"
    invalid = await admin.post("/api/v1/organizations", json={"name": "bad name!", "extra": 1})
    assert invalid.status_code == 422
    assert {i["path"] for i in _error(invalid)["issues"]} == {"name", "extra"}
    not_json = await admin.post(
        "/api/v1/organizations", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and _error(not_json)["code"] == "invalid_json"

    patched = await admin.patch("/api/v1/organizations/acme", json={"policy": {"audit": "off"}})
    assert patched.json()["policy"]["audit"] == "off"
    assert patched.json()["policy"]["routing"] == "priority"
    bad_policy = await admin.patch("/api/v1/organizations/acme", json={"policy": {"routing": "random"}})
    assert bad_policy.status_code == 422
    assert (await admin.get("/api/v1/organizations")).json()["data"][0]["name"] == "acme"
    missing = await admin.get("/api/v1/organizations/nope")
    assert missing.status_code == 404 and _error(missing)["type"] == "not_found_error"
    assert (await admin.delete("/api/v1/organizations/acme")).status_code == 204
    assert (await admin.get("/api/v1/organizations/acme")).status_code == 404


async def test_provider_credentials_are_write_only(admin: httpx.AsyncClient, engine: Engine) -> None:
    created = await admin.post("/api/v1/providers", json=PROVIDER)
    assert created.status_code == 201
    body = created.json()
    assert body["has_api_key"] is True and "api_key" not in body and "api_key_encrypted" not in body
    assert body["base_url"] == "https://up.example"
    assert "sk-1" not in (await admin.get("/api/v1/providers")).text

    switched = await admin.patch(
        "/api/v1/providers/up", json={"api_key_env": "UP_KEY", "timeout_seconds": 30}
    )
    assert switched.json()["has_api_key"] is False and switched.json()["api_key_env"] == "UP_KEY"
    assert switched.json()["timeout_seconds"] == 30
    both = await admin.patch("/api/v1/providers/up", json={"api_key": "a", "api_key_env": "B"})
    assert both.status_code == 422
    bad_url = await admin.patch("/api/v1/providers/up", json={"base_url": "ftp://x"})
    assert bad_url.status_code == 422 and _error(bad_url)["issues"][0]["path"] == "base_url"
    with Session(engine) as session:
        assert session.scalars(select(Provider)).one().api_key_encrypted is None


async def test_provider_auth_header_is_set_validated_and_reset(admin: httpx.AsyncClient) -> None:
    created = await admin.post("/api/v1/providers", json={**PROVIDER, "auth_header": "X-Api-Key"})
    assert created.status_code == 201 and created.json()["auth_header"] == "X-Api-Key"
    bearer = await admin.patch("/api/v1/providers/up", json={"auth_header": "Bearer"})
    assert bearer.json()["auth_header"] == "bearer"
    bad = await admin.patch("/api/v1/providers/up", json={"auth_header": "not a header"})
    assert bad.status_code == 422 and _error(bad)["issues"][0]["path"] == "auth_header"
    untouched = await admin.patch("/api/v1/providers/up", json={"timeout_seconds": 5})
    assert untouched.json()["auth_header"] == "bearer"
    reset = await admin.patch("/api/v1/providers/up", json={"auth_header": ""})
    assert reset.json()["auth_header"] == ""


async def test_models_prices_and_references(admin: httpx.AsyncClient) -> None:
    dangling = await admin.post("/api/v1/models", json=MODEL)
    assert dangling.status_code == 422
    assert _error(dangling)["issues"] == [{"path": "targets[0].provider", "message": "unknown provider 'up'"}]
    await admin.post("/api/v1/providers", json=PROVIDER)
    created = await admin.post("/api/v1/models", json=MODEL)
    assert created.status_code == 201 and created.json()["targets"][0]["provider"] == "up"
    patched = await admin.patch(
        "/api/v1/models/chat", json={"targets": [{"provider": "up", "model": "m2", "weight": 3}]}
    )
    assert patched.json()["targets"] == [
        {"provider": "up", "model": "m2", "priority": 0, "weight": 3, "limits": {}}
    ]

    price = {"model": "chat", "unit": "input_token", "per_million": 1.25}
    assert (await admin.post("/api/v1/prices", json=price)).status_code == 201
    assert (await admin.post("/api/v1/prices", json=price)).status_code == 409
    updated = await admin.put("/api/v1/prices/chat/input_token", json={"per_million": 2})
    assert updated.json() == {
        "model": "chat",
        "unit": "input_token",
        "per_million": 2.0,
        "currency": "USD",
        "effective_from": None,
    }

    in_use = await admin.delete("/api/v1/providers/up")
    assert in_use.status_code == 409 and _error(in_use)["code"] == "provider_in_use"
    assert (await admin.delete("/api/v1/models/chat")).status_code == 204
    assert (await admin.get("/api/v1/prices")).json()["data"] == []
    assert (await admin.delete("/api/v1/providers/up")).status_code == 204


async def test_key_creation_shows_value_once_and_stores_hash(
    admin: httpx.AsyncClient, engine: Engine
) -> None:
    await admin.post("/api/v1/organizations", json={"name": "acme"})
    created = await admin.post(
        "/api/v1/keys", json={"name": "svc", "org": "acme", "limits": {"rpm": 60, "budget": {"amount": 5}}}
    )
    assert created.status_code == 201
    body = created.json()
    value = body["key"]
    assert value.startswith("gk_") and body["prefix"] == value[:10]
    # Stored canonically: the `budget` shorthand joins the `budgets` list, spelled out.
    assert body["limits"] == {"rpm": 60, "budgets": [{"amount": 5.0, "currency": "USD", "period": "month"}]}
    assert (body["enabled"], body["allowed_ips"], body["shadow"]) == (True, [], [])
    with Session(engine) as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.key_hash == hash_api_key(value)

    listed = await admin.get("/api/v1/keys", params={"org": "acme"})
    assert value not in listed.text and listed.json()["data"][0]["prefix"] == value[:10]

    assert (await admin.post("/api/v1/keys", json={"name": "svc", "org": "acme"})).status_code == 409
    fixed = "gk_" + "z" * 40
    reuse = await admin.post("/api/v1/keys", json={"name": "fixed", "org": "acme", "value": fixed})
    assert reuse.status_code == 201 and reuse.json()["key"] == fixed
    clash = await admin.post("/api/v1/keys", json={"name": "other", "org": "acme", "value": fixed})
    assert clash.status_code == 409
    short = await admin.post("/api/v1/keys", json={"name": "s", "org": "acme", "value": "gk_short"})
    assert short.status_code == 422
    unknown_org = await admin.post("/api/v1/keys", json={"name": "x", "org": "ghost"})
    assert unknown_org.status_code == 422 and _error(unknown_org)["issues"][0]["path"] == "org"

    key_id = body["id"]
    patched = await admin.patch(f"/api/v1/keys/{key_id}", json={"scopes": ["embedding"], "limits": {}})
    assert patched.json()["scopes"] == ["embedding"] and patched.json()["limits"] == {}
    revoked = await admin.post(f"/api/v1/keys/{key_id}/revoke")
    assert revoked.json()["revoked"] is True and revoked.json()["revoked_at"]
    assert (await admin.post("/api/v1/keys/nope/revoke")).status_code == 404
    assert (await admin.delete("/api/v1/organizations/acme")).status_code == 409


async def test_probes_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "snapshot": "ok"}
    metrics = await client.get("/metrics")
    assert "switchyard_controlplane_http_requests_total" in metrics.text
    assert (await client.get("/docs")).status_code == 200
    assert "/api/v1/config/apply" in (await client.get("/openapi.json")).json()["paths"]
    unknown = await client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    # Labels are full route templates (prefix included), whatever router a route is on.
    await client.get("/api/v1/organizations/some-org")
    metrics = await client.get("/metrics")
    assert 'route="/api/v1/organizations/{name}"' in metrics.text
