"""Key state and scopes: capability scopes, model allow-list, enabled flag, expiry, client
networks, shadow mode for those rules; refusals in the caller's protocol."""

from __future__ import annotations

import orjson
import pytest
from switchyard_common.proto.controlplane_pb2 import Snapshot
from switchyard_dataplane.admission.scopes import check_client_address
from switchyard_dataplane.index import build_index

from tests.unit.dataplane.conftest import AUTH, KEY, SECRET, chat_body, make_snapshot
from tests.unit.dataplane.governed import governed_gateway

ANTHROPIC_AUTH = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def snapshot(**key_fields: object) -> Snapshot:
    snap = make_snapshot()
    key = snap.keys[0]
    for name, value in key_fields.items():
        field = getattr(key, name)
        if isinstance(value, list):
            del field[:]
            field.extend(value)
        else:
            setattr(key, name, value)
    emb = snap.models.add(id="m-emb", name="embed", capability="embedding")
    emb.targets.add(provider_slug="up", upstream_model="emb-up")
    return snap


async def test_a_missing_capability_scope_is_named() -> None:
    async with governed_gateway(snapshot(models=[])) as gw:
        response = await gw.client.post(
            "/v1/embeddings", content=orjson.dumps({"model": "embed", "input": "hi"}), headers=AUTH
        )
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["message"] == "this API key lacks the 'embedding' scope"
        assert error["code"] == "missing_scope"
        assert (gw.events[-1].status, gw.events[-1].refused_by) == (403, "key.scopes")


async def test_a_model_outside_the_allow_list_is_named_in_both_protocols() -> None:
    async with governed_gateway(snapshot(models=["chat"])) as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body("echo"), headers=AUTH)
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "this API key may not use the model 'echo'"
        assert gw.events[-1].refused_by == "key.models"
        body = orjson.dumps(
            {"model": "echo", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        )
        response = await gw.client.post("/v1/messages", content=body, headers=ANTHROPIC_AUTH)
        assert response.status_code == 403
        assert response.json() == {
            "type": "error",
            "error": {"type": "permission_error", "message": "this API key may not use the model 'echo'"},
        }


async def test_a_disabled_key_gets_403_and_an_expired_key_401() -> None:
    async with governed_gateway(snapshot(disabled=True)) as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "this API key is disabled"
        models = await gw.client.get("/v1/models", headers=AUTH)
        assert models.status_code == 403
    async with governed_gateway(snapshot(expires_at=1_000)) as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "expired_api_key"


async def test_revocation_applies_with_the_next_snapshot() -> None:
    async with governed_gateway(snapshot()) as gw:
        assert (
            await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        ).status_code == 200
        gw.swap(snapshot(revoked=True, scopes=["llm"]))
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 401
        gw.swap(snapshot(scopes=["embedding"]))
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 403
        assert "lacks the 'llm' scope" in response.json()["error"]["message"]


async def test_client_networks_allow_listed_callers_and_name_the_refused_address() -> None:
    snap = snapshot(allowed_cidrs=["10.0.0.0/8", "2001:db8::/32"])
    async with governed_gateway(snap, client_ip="10.1.2.3") as gw:
        assert (
            await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        ).status_code == 200
    async with governed_gateway(snap, client_ip="2001:db8::7") as gw:
        assert (
            await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        ).status_code == 200
    async with governed_gateway(snap, client_ip="192.0.2.1") as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 403
        assert response.json()["error"]["message"] == (
            "client address 192.0.2.1 is not in this key's allowed networks"
        )
        assert (gw.events[-1].status, gw.events[-1].refused_by) == (403, "key.ip")


def test_ipv4_mapped_ipv6_addresses_match_ipv4_networks() -> None:
    index = build_index(snapshot(allowed_cidrs=["10.0.0.0/8"]), secret_key=SECRET, env={})
    key = next(iter(index.keys.values()))
    check_client_address(key, "::ffff:10.9.9.9")
    with pytest.raises(Exception, match="not in this key's allowed networks"):
        check_client_address(key, "::1")
    with pytest.raises(Exception, match="address unknown"):
        check_client_address(key, None)


async def test_shadowed_scope_model_and_ip_rules_admit_and_record() -> None:
    snap = snapshot(
        scopes=["embedding"], models=["embed"], allowed_cidrs=["10.0.0.0/8"], shadow=["scopes", "ip"]
    )
    async with governed_gateway(snap, client_ip="192.0.2.1") as gw:
        # "scopes" is shadowed; "models" is not: chat is outside the allow-list.
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 403
        assert "may not use the model 'chat'" in response.json()["error"]["message"]
    snap = snapshot(
        scopes=["embedding"],
        models=["embed"],
        allowed_cidrs=["10.0.0.0/8"],
        shadow=["scopes", "models", "ip"],
    )
    async with governed_gateway(snap, client_ip="192.0.2.1") as gw:
        response = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
        assert response.status_code == 200
        event = gw.events[-1]
        assert event.shadow_refusals == ["key.ip", "key.scopes", "key.models"]
        assert event.refused_by is None
        metrics = gw.governor.metrics.render().decode()
        assert 'switchyard_dataplane_shadow_refusals_total{rule="key.ip"} 1.0' in metrics


async def test_the_model_list_honours_the_client_allow_list() -> None:
    snap = snapshot(allowed_cidrs=["10.0.0.0/8"])
    async with governed_gateway(snap, client_ip="192.0.2.1") as gw:
        response = await gw.client.get("/v1/models", headers=AUTH)
        assert response.status_code == 403
        assert "192.0.2.1" in response.json()["error"]["message"]
    async with governed_gateway(snap, client_ip="10.0.0.1") as gw:
        assert (await gw.client.get("/v1/models", headers=AUTH)).status_code == 200
