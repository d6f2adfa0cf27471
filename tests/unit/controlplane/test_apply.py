"""apply_document on SQLite: one transaction, one version bump, idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from switchyard_common.config_schema import parse_config
from switchyard_common.errors import ConfigError
from switchyard_common.secrets import SecretBox, hash_api_key
from switchyard_controlplane import repo
from switchyard_controlplane.config_apply import apply_document
from switchyard_controlplane.config_export import export_dict
from switchyard_controlplane.db import ApiKey, Organization, Provider
from switchyard_controlplane.settings import ControlPlaneSettings

FIXED_KEY = "gk_" + "f" * 40

DOCUMENT: dict[str, Any] = {
    "organizations": [{"name": "acme", "policy": {"routing": "priority", "audit": "metadata"}}],
    "providers": [
        {
            "slug": "deepseek",
            "api_format": "openai",
            "base_url": "https://api.deepseek.com",
            "api_key": "sk-secret",
            "models": ["deepseek-chat"],
        },
        {"slug": "vllm", "api_format": "openai", "base_url": "http://vllm:8000", "api_key_env": "VLLM_KEY"},
    ],
    "models": [
        {
            "name": "chat-default",
            "targets": [
                {"provider": "deepseek", "model": "deepseek-chat"},
                {"provider": "vllm", "model": "qwen", "priority": 1},
            ],
        }
    ],
    "prices": [{"model": "chat-default", "unit": "input_token", "per_million": 0.27}],
    "keys": [
        {"name": "billing", "org": "acme", "value": FIXED_KEY, "limits": {"rpm": 600}},
        {"name": "generated", "org": "acme", "scopes": ["llm", "embedding"]},
    ],
}


def _version(engine: Engine) -> int:
    with Session(engine) as session:
        return repo.read_config_version(session).version


def test_apply_creates_then_is_idempotent(engine: Engine, settings: ControlPlaneSettings) -> None:
    doc = parse_config(DOCUMENT)
    first = apply_document(engine, settings, doc)
    assert first.changed
    assert {c.action for c in first.changes} == {"create"}
    assert first.version == 1  # one bump for the whole document
    assert [(k.org, k.name) for k in first.created_keys] == [("acme", "generated")]
    generated = first.created_keys[0].key
    assert generated.startswith("gk_")

    second = apply_document(engine, settings, doc)
    assert not second.changed
    assert {c.action for c in second.changes} == {"unchanged"}
    assert second.created_keys == []
    assert second.version == 1 == _version(engine)

    with Session(engine) as session:
        keys = {k.name: k for k in session.scalars(select(ApiKey))}
        assert keys["billing"].key_hash == hash_api_key(FIXED_KEY)
        assert keys["generated"].key_hash == hash_api_key(generated)
        assert keys["billing"].limits == {"rpm": 600}
        deepseek = session.scalars(select(Provider).where(Provider.slug == "deepseek")).one()
        assert deepseek.api_key_encrypted and "sk-secret" not in deepseek.api_key_encrypted
        assert SecretBox(settings.secret_key).decrypt(deepseek.api_key_encrypted) == "sk-secret"
        vllm = session.scalars(select(Provider).where(Provider.slug == "vllm")).one()
        assert (vllm.api_key_env, vllm.api_key_encrypted) == ("VLLM_KEY", None)


def test_changes_bump_once_and_update_in_place(engine: Engine, settings: ControlPlaneSettings) -> None:
    apply_document(engine, settings, parse_config(DOCUMENT))
    changed = {**DOCUMENT}
    changed["prices"] = [{"model": "chat-default", "unit": "input_token", "per_million": 0.5}]
    changed["providers"] = [{**DOCUMENT["providers"][0], "api_key": "sk-rotated"}, DOCUMENT["providers"][1]]
    result = apply_document(engine, settings, parse_config(changed))
    assert result.changed and result.version == 2
    updates = {(c.kind, c.name): c.fields for c in result.changes if c.action == "update"}
    assert updates == {
        ("price", "chat-default/input_token"): ("per_million",),
        ("provider", "deepseek"): ("api_key",),
    }


def test_dry_run_writes_nothing(engine: Engine, settings: ControlPlaneSettings) -> None:
    result = apply_document(engine, settings, parse_config(DOCUMENT), dry_run=True)
    assert result.changed and result.dry_run and result.created_keys == []
    assert _version(engine) == 0
    with Session(engine) as session:
        assert session.scalars(select(Organization)).all() == []


def test_invalid_document_writes_nothing(engine: Engine, settings: ControlPlaneSettings) -> None:
    bad = {**DOCUMENT, "keys": [{"name": "k", "org": "nope"}]}
    with pytest.raises(ConfigError) as caught:
        apply_document(engine, settings, parse_config(bad))
    assert [i.path for i in caught.value.issues] == ["keys[0].org"]
    assert _version(engine) == 0


def test_unresolved_value_env_is_rejected(engine: Engine, settings: ControlPlaneSettings) -> None:
    doc = {"organizations": [{"name": "acme"}], "keys": [{"name": "k", "org": "acme", "value_env": "K"}]}
    with pytest.raises(ConfigError) as caught:
        apply_document(engine, settings, parse_config(doc))
    assert caught.value.issues[0].path == "keys[0].value_env"


def test_references_to_stored_entities_are_valid(engine: Engine, settings: ControlPlaneSettings) -> None:
    apply_document(engine, settings, parse_config(DOCUMENT))
    follow_up = {"keys": [{"name": "later", "org": "acme", "models": ["chat-default"]}]}
    result = apply_document(engine, settings, parse_config(follow_up))
    assert [c.action for c in result.changes] == ["create"]


def test_export_round_trips_without_secrets(engine: Engine, settings: ControlPlaneSettings) -> None:
    apply_document(engine, settings, parse_config(DOCUMENT))
    with Session(engine) as session:
        exported = export_dict(session)
    text = repr(exported)
    assert "sk-secret" not in text and FIXED_KEY not in text and "value" not in text
    assert exported["providers"][1]["api_key_env"] == "VLLM_KEY"
    assert exported["keys"][0]["limits"] == {"rpm": 600}
    again = apply_document(engine, settings, parse_config(exported))
    assert not again.changed


def test_revoked_flag_revokes_and_is_not_undone(engine: Engine, settings: ControlPlaneSettings) -> None:
    apply_document(engine, settings, parse_config(DOCUMENT))
    revoke = {
        "keys": [
            {"name": "billing", "org": "acme", "value": FIXED_KEY, "limits": {"rpm": 600}, "revoked": True}
        ]
    }
    assert apply_document(engine, settings, parse_config(revoke)).changed
    assert not apply_document(engine, settings, parse_config(DOCUMENT)).changed
    with Session(engine) as session:
        key = session.scalars(select(ApiKey).where(ApiKey.name == "billing")).one()
        assert key.revoked_at is not None


def _with_auth_header(value: str | None) -> dict[str, Any]:
    """DOCUMENT with the vllm provider's auth_header set (None: left out)."""
    vllm = dict(DOCUMENT["providers"][1])
    if value is not None:
        vllm["auth_header"] = value
    return {**DOCUMENT, "providers": [DOCUMENT["providers"][0], vllm]}


def test_auth_header_is_applied_idempotently_and_exported(
    engine: Engine, settings: ControlPlaneSettings
) -> None:
    doc = parse_config(_with_auth_header("X-Api-Key"))
    apply_document(engine, settings, doc)
    second = apply_document(engine, settings, doc)
    assert not second.changed and {c.action for c in second.changes} == {"unchanged"}
    with Session(engine) as session:
        vllm = session.scalars(select(Provider).where(Provider.slug == "vllm")).one()
        assert vllm.auth_header == "X-Api-Key"
        exported = export_dict(session)
    providers = {p["slug"]: p for p in exported["providers"]}
    assert providers["vllm"]["auth_header"] == "X-Api-Key"
    assert "auth_header" not in providers["deepseek"]  # the format's default is not shown
    assert not apply_document(engine, settings, parse_config(exported)).changed

    # Back to the format's default: one update naming only that field, then stable.
    reset = apply_document(engine, settings, parse_config(_with_auth_header(None)))
    updates = {(c.kind, c.name): c.fields for c in reset.changes if c.action == "update"}
    assert updates == {("provider", "vllm"): ("auth_header",)}
    assert not apply_document(engine, settings, parse_config(_with_auth_header(""))).changed
    with Session(engine) as session:
        assert "auth_header" not in export_dict(session)["providers"][1]
