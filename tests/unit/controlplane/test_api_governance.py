"""Governance fields through the admin REST API (SQLite): writes, validation, price
schedule and check, and the breaker/budget state endpoints in embedded mode."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from switchyard_common import governance_registry
from switchyard_common.breaker_state import BreakerState
from switchyard_common.budget_state import BudgetLike, BudgetUsage, usage_of
from switchyard_dataplane.breakers import LocalBreakerStore

PROVIDER = {"slug": "up", "api_format": "openai", "base_url": "https://up.example", "api_key": "sk-1"}
MODEL = {"name": "chat", "targets": [{"provider": "up", "model": "m1"}]}


def _issues(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {i["path"]: i["message"] for i in response.json()["error"]["issues"]}


async def _setup(admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/api/v1/organizations", json={"name": "acme"})).status_code == 201
    assert (await admin.post("/api/v1/providers", json=PROVIDER)).status_code == 201
    assert (await admin.post("/api/v1/models", json=MODEL)).status_code == 201


async def _version(admin: httpx.AsyncClient) -> int:
    return int((await admin.get("/api/v1/snapshot")).json()["version"])


async def test_org_policy_is_validated_and_replaced(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    policy = {
        "routing": "least_latency",
        "providers": ["up"],
        "limits": {"rpm": 5, "budgets": [{"amount": 9}]},
    }
    patched = await admin.patch("/api/v1/organizations/acme", json={"policy": policy})
    assert patched.status_code == 200
    body = patched.json()["policy"]
    assert (body["routing"], body["providers"], body["limits"]["budgets"]) == (
        "least_latency",
        ["up"],
        [{"amount": 9.0, "currency": "USD", "period": "month"}],
    )
    bad = await admin.patch(
        "/api/v1/organizations/acme",
        json={"policy": {"retry": {"on": ["teapot"]}, "breaker": {"cooldown_seconds": 0}, "shadow": ["x"]}},
    )
    issues = _issues(bad)
    assert set(issues) == {"policy.retry.on", "policy.breaker.cooldown_seconds", "policy.shadow[0]"}
    assert "unknown failure class 'teapot'" in issues["policy.retry.on"]


async def test_provider_enabled_flag(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    before = (await admin.get("/api/v1/providers/up")).json()
    assert before["enabled"] is True and len(before["breaker_epoch"]) == 12
    version = await _version(admin)
    disabled = (await admin.patch("/api/v1/providers/up", json={"enabled": False})).json()
    assert disabled["enabled"] is False and disabled["breaker_epoch"] != before["breaker_epoch"]
    assert await _version(admin) == version + 1
    timeout_only = (await admin.patch("/api/v1/providers/up", json={"timeout_seconds": 3})).json()
    assert timeout_only["enabled"] is False and timeout_only["breaker_epoch"] == disabled["breaker_epoch"]


async def test_model_governance_fields_patch_partially(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    patched = await admin.patch(
        "/api/v1/models/chat",
        json={"routing": "lowest_cost", "limits": {"rpm": 7}, "shadow": ["tpm"], "max_output_tokens": 100},
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["routing"], body["limits"], body["shadow"], body["max_output_tokens"]) == (
        "lowest_cost",
        {"rpm": 7},
        ["tpm"],
        100,
    )
    targets = await admin.patch(
        "/api/v1/models/chat", json={"targets": [{"provider": "up", "model": "m1", "limits": {"tpm": 900}}]}
    )
    assert targets.json()["targets"][0]["limits"] == {"tpm": 900}
    assert targets.json()["routing"] == "lowest_cost"  # untouched by a targets-only patch
    reset = (await admin.patch("/api/v1/models/chat", json={"routing": None})).json()
    assert reset["routing"] is None and reset["limits"] == {"rpm": 7}
    issues = _issues(
        await admin.patch(
            "/api/v1/models/chat",
            json={"routing": "random", "max_output_tokens": 0, "limits": {"rpm": -1}, "shadow": ["nope"]},
        )
    )
    assert set(issues) == {"routing", "max_output_tokens", "limits.rpm", "shadow[0]"}


async def test_key_governance_fields(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    created = await admin.post(
        "/api/v1/keys",
        json={
            "name": "svc",
            "org": "acme",
            "scopes": ["llm", "vision"],
            "models": ["chat"],
            "allowed_ips": ["10.1.0.0/16"],
            "shadow": ["ip"],
            "expires_at": "2031-01-01T00:00:00Z",
            "limits": {"concurrency": 3, "budgets": [{"amount": 2, "period": "day", "currency": "EUR"}]},
        },
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert (key["allowed_ips"], key["shadow"], key["enabled"]) == (["10.1.0.0/16"], ["ip"], True)
    assert key["limits"] == {
        "concurrency": 3,
        "budgets": [{"amount": 2.0, "currency": "EUR", "period": "day"}],
    }
    assert key["expires_at"].startswith("2031-01-01T00:00:00")

    version = await _version(admin)
    off = (await admin.patch(f"/api/v1/keys/{key['id']}", json={"enabled": False})).json()
    assert (
        off["enabled"] is False
        and off["scopes"] == ["llm", "vision"]
        and off["allowed_ips"] == ["10.1.0.0/16"]
    )
    assert off["expires_at"] == key["expires_at"] and off["limits"] == key["limits"]
    assert await _version(admin) == version + 1
    cleared = (await admin.patch(f"/api/v1/keys/{key['id']}", json={"expires_at": None, "shadow": []})).json()
    assert cleared["expires_at"] is None and cleared["shadow"] == [] and cleared["enabled"] is False

    issues = _issues(
        await admin.patch(
            f"/api/v1/keys/{key['id']}",
            json={"scopes": ["llm", "teleport"], "allowed_ips": ["10.0.0.300/8"]},
        )
    )
    assert issues == {
        "scopes": "Value error, unknown scope 'teleport' (use llm, embedding, image, asr, tts, ocr, "
        "vision-segment, vision, mcp)",
        "allowed_ips": "Value error, not an IP network: '10.0.0.300/8' (use CIDR such as 10.0.0.0/8)",
    }
    ghost = await admin.patch(f"/api/v1/keys/{key['id']}", json={"models": ["ghost"]})
    assert _issues(ghost) == {"models[0]": "unknown model 'ghost'"}
    # A key has no unpriced rule (the organization's): shadowing it would do nothing.
    unowned = _issues(await admin.patch(f"/api/v1/keys/{key['id']}", json={"shadow": ["ip", "unpriced"]}))
    assert set(unowned) == {"shadow[1]"}, unowned
    duplicate = await admin.patch(
        f"/api/v1/keys/{key['id']}",
        json={
            "limits": {
                "budget": {"amount": 1, "period": "day", "currency": "EUR"},
                "budgets": [{"amount": 2, "period": "day", "currency": "EUR"}],
            }
        },
    )
    assert _issues(duplicate) == {"limits": "two day budgets in EUR; give each period once"}


async def test_price_schedule_target_prices_and_check(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    check = (await admin.get("/api/v1/prices/check")).json()
    assert check["ok"] is False
    assert [(u["model"], u["missing_units"]) for u in check["unpriced"]] == [
        ("chat", ["input_token", "output_token"])
    ]

    for price in (
        {"model": "chat", "unit": "input_token", "per_million": 1},
        {"model": "chat", "unit": "input_token", "per_million": 2, "effective_from": "2030-01-01T00:00:00Z"},
        {"model": "up/m1", "unit": "output_token", "per_million": 3},
    ):
        response = await admin.post("/api/v1/prices", json=price)
        assert response.status_code == 201, response.text
    assert (await admin.get("/api/v1/prices/check")).json() == {"ok": True, "unpriced": []}

    dated = await admin.get(
        "/api/v1/prices/chat/input_token", params={"effective_from": "2030-01-01T00:00:00Z"}
    )
    assert dated.json()["per_million"] == 2.0 and dated.json()["effective_from"].startswith("2030-01-01")
    undated = await admin.get("/api/v1/prices/chat/input_token")
    assert (undated.json()["per_million"], undated.json()["effective_from"]) == (1.0, None)
    # A target price's model has a slash: the unit is the last path segment.
    target = await admin.put("/api/v1/prices/up/m1/output_token", json={"per_million": 3.5})
    assert (
        target.status_code == 200
        and target.json()["model"] == "up/m1"
        and target.json()["per_million"] == 3.5
    )
    missing = await admin.get("/api/v1/prices/chat/input_token", params={"effective_from": "2031-01-01"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "price_not_found"
    unknown = await admin.post("/api/v1/prices", json={"model": "nope/m", "unit": "page", "per_million": 1})
    assert "model" in _issues(unknown)
    deleted = await admin.delete(
        "/api/v1/prices/chat/input_token", params={"effective_from": "2030-01-01T00:00:00Z"}
    )
    assert deleted.status_code == 204
    listed = (await admin.get("/api/v1/prices")).json()["data"]
    assert [(p["model"], p["unit"], p["effective_from"]) for p in listed] == [
        ("chat", "input_token", None),
        ("up/m1", "output_token", None),
    ]
    # Deleting the model deletes its prices, not the target's.
    assert (await admin.delete("/api/v1/models/chat")).status_code == 204
    assert [p["model"] for p in (await admin.get("/api/v1/prices")).json()["data"]] == ["up/m1"]


class _Budgets:
    """What an embedded data plane registers as LOCAL_BUDGETS: answers from fixed counters."""

    def __init__(self, spent: dict[tuple[str, str, str], float]) -> None:
        self.spent = spent
        self.calls: list[tuple[str, str]] = []

    async def read_budget_usage(
        self, scope: str, owner_id: str, budgets: list[BudgetLike], now: float
    ) -> list[BudgetUsage]:
        self.calls.append((scope, owner_id))
        return [
            usage_of(b, int(self.spent.get((scope, owner_id, b.period), 0) * 1e9), 0, now) for b in budgets
        ]


@pytest.fixture
def embedded_state() -> Iterator[tuple[LocalBreakerStore, _Budgets]]:
    breakers = LocalBreakerStore()
    budgets = _Budgets({})
    governance_registry.LOCAL_BREAKERS, governance_registry.LOCAL_BUDGETS = breakers, budgets
    try:
        yield breakers, budgets
    finally:
        governance_registry.LOCAL_BREAKERS = governance_registry.LOCAL_BUDGETS = None


async def test_state_endpoints_need_redis_or_an_embedded_data_plane(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    key = (
        await admin.post(
            "/api/v1/keys", json={"name": "k", "org": "acme", "limits": {"budget": {"amount": 1}}}
        )
    ).json()
    for path in ("/api/v1/breakers", f"/api/v1/keys/{key['id']}/budget"):
        response = await admin.get(path)
        assert response.status_code == 503, path
        assert response.json()["error"]["code"] == "state_unavailable"
        assert "SWITCHYARD_REDIS_URL" in response.json()["error"]["message"]
    # Nothing to read: no budgets configured is an answer, not an outage.
    no_budgets = await admin.get("/api/v1/organizations/acme/budget")
    assert no_budgets.status_code == 200 and no_budgets.json()["budgets"] == []


async def test_state_endpoints_read_the_embedded_data_plane(
    admin: httpx.AsyncClient, embedded_state: tuple[LocalBreakerStore, _Budgets]
) -> None:
    breakers, budgets = embedded_state
    await _setup(admin)
    epoch = (await admin.get("/api/v1/providers/up")).json()["breaker_epoch"]
    now = time.time()
    breakers.put(f"up:{epoch}:m1", BreakerState("up", epoch, "m1", "open", 5, now + 30))
    breakers.put("up:old:m1", BreakerState("up", "old", "m1", "open", 5, now - 1))
    breakers.put(f"other:{epoch}:x", BreakerState("other", epoch, "x", "closed", 1, 0))
    listed = (await admin.get("/api/v1/breakers", params={"provider": "up"})).json()
    assert listed["source"] == "local"
    assert [(b["epoch"], b["state"], b["failures"], b["current"]) for b in listed["data"]] == [
        (epoch, "open", 5, True),
        ("old", "half_open", 5, False),
    ]
    assert len((await admin.get("/api/v1/breakers")).json()["data"]) == 3

    await admin.patch(
        "/api/v1/organizations/acme",
        json={"policy": {"limits": {"budgets": [{"amount": 10, "period": "week"}]}}},
    )
    key = (
        await admin.post(
            "/api/v1/keys",
            json={
                "name": "k",
                "org": "acme",
                "shadow": ["budget"],
                "limits": {"budget": {"amount": 4, "period": "day"}},
            },
        )
    ).json()
    org_id = (await admin.get("/api/v1/organizations/acme")).json()["id"]
    budgets.spent.update({("key", key["id"], "day"): 1.5, ("org", org_id, "week"): 2.0})
    key_budget = (await admin.get(f"/api/v1/keys/{key['id']}/budget")).json()
    assert (key_budget["key"], key_budget["org"], key_budget["source"], key_budget["shadow"]) == (
        "k",
        "acme",
        "local",
        True,
    )
    ((usage,),) = [key_budget["budgets"]]
    assert (usage["period"], usage["amount"], usage["spent"], usage["remaining"]) == ("day", 4.0, 1.5, 2.5)
    org_budget = (await admin.get("/api/v1/organizations/acme/budget")).json()
    assert [(u["period"], u["spent"], u["remaining"]) for u in org_budget["budgets"]] == [("week", 2.0, 8.0)]
    assert budgets.calls == [("key", key["id"]), ("org", org_id)]
    assert (await admin.get("/api/v1/keys/nope/budget")).status_code == 404
    assert (await admin.get("/api/v1/organizations/nope/budget")).status_code == 404


def _doc_for_openapi(spec: dict[str, Any]) -> set[str]:
    return set(spec["paths"])


async def test_state_endpoints_are_documented(client: httpx.AsyncClient) -> None:
    paths = _doc_for_openapi((await client.get("/openapi.json")).json())
    assert {
        "/api/v1/breakers",
        "/api/v1/keys/{key_id}/budget",
        "/api/v1/organizations/{name}/budget",
        "/api/v1/prices/check",
    } <= paths
