"""Governance config (issue 4) through apply, export and the snapshot, on SQLite."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from switchyard_common.config_schema import parse_config
from switchyard_common.errors import ConfigError
from switchyard_controlplane import repo
from switchyard_controlplane.config_apply import ApplyResult, apply_document
from switchyard_controlplane.config_export import export_dict
from switchyard_controlplane.settings import ControlPlaneSettings
from switchyard_controlplane.snapshot_builder import build_snapshot_from_engine

KEY = "gk_" + "g" * 40
POLICY: dict[str, Any] = {
    "routing": "lowest_cost",
    "overflow": "fail",
    "audit": "full",
    "on_redis_failure": "closed",
    "unpriced": "refuse",
    "providers": ["up"],
    "retry": {"on": ["timeout", "5xx", "408"], "max_attempts": 3, "deadline_seconds": 20},
    "breaker": {"failures": 3, "cooldown_seconds": 10},
    "limits": {"rpm": 1000, "tpm": 50000, "budgets": [{"amount": 100, "currency": "EUR", "period": "week"}]},
    "shadow": ["tpm"],
    "audit_retention_days": 7,
    "audit_max_body_bytes": 1024,
    "audit_redact_paths": ["$.messages[*].content"],
}
DOC: dict[str, Any] = {
    "organizations": [{"name": "acme", "policy": POLICY}, {"name": "plain"}],
    "providers": [
        {"slug": "up", "api_format": "openai", "base_url": "https://up.example", "api_key": "sk-up"},
        {"slug": "off", "api_format": "openai", "base_url": "https://off.example", "enabled": False},
    ],
    "models": [
        {
            "name": "chat",
            "capability": "llm",
            "routing": "weighted",
            "limits": {"rpm": 30, "tpm": 9000},
            "shadow": ["rpm"],
            "max_output_tokens": 512,
            "targets": [
                {"provider": "up", "model": "m1", "weight": 3, "limits": {"rpm": 10}},
                {"provider": "off", "model": "m2", "priority": 1},
            ],
        }
    ],
    "prices": [
        {"model": "chat", "unit": "input_token", "per_million": 1.0},
        {
            "model": "chat",
            "unit": "input_token",
            "per_million": 2.0,
            "effective_from": "2030-01-01T00:00:00Z",
        },
        {"model": "chat", "unit": "output_token", "per_million": 4.0, "currency": "USD"},
        {"model": "up/m1", "unit": "input_token", "per_million": 0.5},
        {"model": "up/m1", "unit": "output_token", "per_million": 1.5},
    ],
    "keys": [
        {
            "name": "svc",
            "org": "acme",
            "value": KEY,
            "scopes": ["llm", "embedding", "mcp"],
            "models": ["chat"],
            "enabled": False,
            "expires_at": "2031-05-01T12:00:00+02:00",
            "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"],
            "shadow": ["budget", "ip"],
            "limits": {
                "rpm": 60,
                "tpm": 1000,
                "concurrency": 4,
                "budget": {"amount": 5, "period": "day"},
                "budgets": [{"amount": 50, "currency": "EUR", "period": "month"}],
            },
        }
    ],
}


def _apply(engine: Engine, settings: ControlPlaneSettings, doc: dict[str, Any]) -> ApplyResult:
    return apply_document(engine, settings, parse_config(doc))


def _export(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        return export_dict(session)


def _updates(result: ApplyResult) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(c.kind, c.name): c.fields for c in result.changes if c.action == "update"}


def test_every_governance_field_round_trips(engine: Engine, settings: ControlPlaneSettings) -> None:
    first = _apply(engine, settings, DOC)
    assert first.changed and first.version == 1
    assert [c.name for c in first.changes if c.kind == "price"] == [
        "chat/input_token",
        "chat/input_token@2030-01-01T00:00:00+00:00",
        "chat/output_token",
        "up/m1/input_token",
        "up/m1/output_token",
    ]
    second = _apply(engine, settings, DOC)
    assert not second.changed and second.version == 1

    exported = _export(engine)
    assert not _apply(engine, settings, exported).changed
    acme, plain = exported["organizations"]
    assert plain == {"name": "plain"}  # a default policy is left out
    assert acme["policy"]["retry"] == {
        "on": ["timeout", "5xx", "408"],
        "max_attempts": 3,
        "deadline_seconds": 20.0,
    }
    assert acme["policy"]["limits"]["budgets"] == [{"amount": 100.0, "currency": "EUR", "period": "week"}]
    providers = {p["slug"]: p for p in exported["providers"]}
    assert providers["off"]["enabled"] is False and "enabled" not in providers["up"]
    (model,) = exported["models"]
    assert model == {
        "name": "chat",
        "capability": "llm",
        "targets": [
            {"provider": "up", "model": "m1", "weight": 3, "limits": {"rpm": 10}},
            {"provider": "off", "model": "m2", "priority": 1},
        ],
        "routing": "weighted",
        "limits": {"rpm": 30, "tpm": 9000},
        "shadow": ["rpm"],
        "max_output_tokens": 512,
    }
    dated = [p for p in exported["prices"] if "effective_from" in p]
    assert dated == [
        {
            "model": "chat",
            "unit": "input_token",
            "per_million": 2.0,
            "effective_from": "2030-01-01T00:00:00Z",
            "currency": "USD",
        }
    ]
    (key,) = exported["keys"]
    assert key["expires_at"] == "2031-05-01T10:00:00Z"
    assert (key["enabled"], key["allowed_ips"], key["shadow"]) == (
        False,
        ["10.0.0.0/8", "2001:db8::/32"],
        ["budget", "ip"],
    )
    assert key["limits"] == {
        "rpm": 60,
        "tpm": 1000,
        "concurrency": 4,
        "budgets": [{"amount": 5.0, "period": "day"}, {"amount": 50.0, "currency": "EUR"}],
    }


def test_snapshot_carries_every_governance_field(engine: Engine, settings: ControlPlaneSettings) -> None:
    _apply(engine, settings, DOC)
    snap = build_snapshot_from_engine(engine)
    orgs = {o.name: o for o in snap.organizations}
    policy = orgs["acme"].policy
    assert (policy.routing, policy.overflow, policy.audit, policy.on_redis_failure, policy.unpriced) == (
        "lowest_cost",
        "fail",
        "full",
        "closed",
        "refuse",
    )
    assert list(policy.allowed_providers) == ["up"]
    assert (list(policy.retry.retry_on), policy.retry.max_attempts, policy.retry.deadline_seconds) == (
        ["timeout", "5xx", "408"],
        3,
        20.0,
    )
    assert (policy.breaker.failure_threshold, policy.breaker.cooldown_seconds) == (3, 10.0)
    assert (policy.limits.rpm, policy.limits.tpm) == (1000, 50000)
    assert [(b.amount, b.currency, b.period) for b in policy.budgets] == [(100.0, "EUR", "week")]
    assert list(policy.shadow) == ["tpm"]
    assert (policy.audit_retention_days, policy.audit_max_body_bytes) == (7, 1024)
    assert list(policy.audit_redact_paths) == ["$.messages[*].content"]
    assert orgs["acme"].policy_raw["routing"] == "lowest_cost"
    assert orgs["acme"].policy_raw["breaker"] == '{"failures":3,"cooldown_seconds":10.0}'
    # A default policy is still sent complete: the data plane enforces it as is.
    assert (orgs["plain"].policy.routing, orgs["plain"].policy.breaker.failure_threshold) == ("priority", 5)

    providers = {p.slug: p for p in snap.providers}
    assert (providers["up"].disabled, providers["off"].disabled) == (False, True)

    (model,) = snap.models
    assert (
        model.routing,
        model.limits.rpm,
        model.limits.tpm,
        list(model.shadow),
        model.max_output_tokens,
    ) == (
        "weighted",
        30,
        9000,
        ["rpm"],
        512,
    )
    assert [(t.provider_slug, t.limits.rpm, t.limits.tpm) for t in model.targets] == [
        ("up", 10, 0),
        ("off", 0, 0),
    ]

    (key,) = snap.keys
    assert (key.disabled, list(key.allowed_cidrs), list(key.shadow)) == (
        True,
        ["10.0.0.0/8", "2001:db8::/32"],
        ["budget", "ip"],
    )
    assert key.expires_at == int(datetime(2031, 5, 1, 10, tzinfo=UTC).timestamp())
    assert list(key.scopes) == ["llm", "embedding", "mcp"]
    assert (key.limits.rpm, key.limits.tpm, key.limits.concurrency) == (60, 1000, 4)
    assert [(b.amount, b.currency, b.period) for b in key.limits.budgets] == [
        (5.0, "USD", "day"),
        (50.0, "EUR", "month"),
    ]

    prices = [(p.model, p.unit, p.per_million, p.effective_from_ms) for p in snap.prices]
    assert prices == [
        ("chat", "input_token", 1.0, 0),
        ("chat", "input_token", 2.0, int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)),
        ("chat", "output_token", 4.0, 0),
        ("up/m1", "input_token", 0.5, 0),
        ("up/m1", "output_token", 1.5, 0),
    ]


@pytest.mark.parametrize(
    ("section", "path", "value", "field"),
    [
        ("organizations", ("policy", "overflow"), "next_target", "policy"),
        ("providers", ("enabled",), False, "enabled"),
        ("models", ("routing",), None, "routing"),
        ("models", ("limits",), {"rpm": 31}, "limits"),
        ("models", ("shadow",), [], "shadow"),
        ("models", ("max_output_tokens",), 4096, "max_output_tokens"),
        ("models", ("targets", 0, "limits"), {}, "targets"),
        ("keys", ("scopes",), ["llm"], "scopes"),
        ("keys", ("models",), [], "models"),
        ("keys", ("enabled",), True, "enabled"),
        ("keys", ("expires_at",), None, "expires_at"),
        ("keys", ("allowed_ips",), [], "allowed_ips"),
        ("keys", ("shadow",), ["budget"], "shadow"),
        ("keys", ("limits", "concurrency"), 5, "limits"),
    ],
)
def test_each_change_is_one_update_and_one_version(
    engine: Engine,
    settings: ControlPlaneSettings,
    section: str,
    path: tuple[Any, ...],
    value: Any,
    field: str,
) -> None:
    _apply(engine, settings, DOC)
    changed = copy.deepcopy(DOC)
    target: Any = changed[section][0]
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    result = _apply(engine, settings, changed)
    assert result.changed and result.version == 2
    ((_, fields),) = _updates(result).items()
    assert fields == (field,)
    assert not _apply(engine, settings, changed).changed
    assert build_snapshot_from_engine(engine).version == 2


def test_price_schedule_keeps_older_entries(engine: Engine, settings: ControlPlaneSettings) -> None:
    _apply(engine, settings, DOC)
    later = {
        "prices": [
            {"model": "chat", "unit": "input_token", "per_million": 3.0, "effective_from": "2032-01-01"}
        ]
    }
    result = _apply(engine, settings, later)
    assert [(c.name, c.action) for c in result.changes] == [
        ("chat/input_token@2032-01-01T00:00:00+00:00", "create")
    ]
    repriced = {"prices": [{"model": "chat", "unit": "input_token", "per_million": 1.1}]}
    assert _updates(_apply(engine, settings, repriced)) == {("price", "chat/input_token"): ("per_million",)}
    with Session(engine) as session:
        schedule = [
            (p.per_million, p.effective_from_ms) for p in repo.prices.list_prices(session, model="chat")
        ]
    assert [rate for rate, _ in schedule] == [1.1, 2.0, 3.0, 4.0]


def test_breaker_epoch_follows_what_decides_success(engine: Engine, settings: ControlPlaneSettings) -> None:
    _apply(engine, settings, DOC)

    def epoch() -> str:
        return next(p.breaker_epoch for p in build_snapshot_from_engine(engine).providers if p.slug == "up")

    provider = dict(DOC["providers"][0])

    def set_up(**values: Any) -> None:
        # Changes accumulate; None removes a field (switching the credential's kind).
        provider.update(values)
        doc = copy.deepcopy(DOC)
        doc["providers"][0] = {k: v for k, v in provider.items() if v is not None}
        assert _apply(engine, settings, doc).changed

    original = epoch()
    set_up(timeout_seconds=5, models=["m1"], headers={"X-Team": "a"})
    assert epoch() == original  # unrelated settings keep the breakers
    for change in (
        {"api_key": "sk-rotated"},
        {"api_key": None, "api_key_env": "UP_KEY"},
        {"api_key_env": "OTHER_KEY"},
        {"base_url": "https://up2.example"},
        {"api_path": "/v2/chat"},
        {"auth_header": "X-Api-Key"},
        {"enabled": False},
        {"enabled": True},
    ):
        before = epoch()
        set_up(**change)
        assert epoch() != before, change
    assert epoch() != original
    # Off and on again is not back to the old epoch, whose breakers may still be open.
    before_off = epoch()
    set_up(enabled=False)
    set_up(enabled=True)
    assert epoch() != before_off


def test_reference_and_duplicate_errors(engine: Engine, settings: ControlPlaneSettings) -> None:
    bad = copy.deepcopy(DOC)
    bad["prices"].append({"model": "ghost/m1", "unit": "input_token", "per_million": 1})
    bad["prices"].append(
        {"model": "chat", "unit": "input_token", "per_million": 9, "effective_from": "2030-01-01"}
    )
    bad["keys"][0]["limits"]["budgets"].append({"amount": 1, "currency": "EUR", "period": "month"})
    bad["organizations"][0]["policy"]["providers"] = ["up", "nope"]
    with pytest.raises(ConfigError) as caught:
        _apply(engine, settings, bad)
    assert {i.path: i.message for i in caught.value.issues} == {
        "prices[6]": "duplicate price for 'chat' input_token from 2030-01-01T00:00:00+00:00",
        "organizations[0].policy.providers[1]": "unknown provider 'nope'",
        "prices[5].model": (
            "unknown model 'ghost/m1' (name a public model, or <provider>/<upstream model> of a known "
            "provider for a target price)"
        ),
        "keys[0].limits": "two month budgets in EUR; give each period once",
    }
    with Session(engine) as session:
        assert repo.read_config_version(session).version == 0


def test_legacy_stored_policy_is_read_and_normalised(engine: Engine, settings: ControlPlaneSettings) -> None:
    """Policies stored before they were structured (free string maps) still load."""
    _apply(engine, settings, {"organizations": [{"name": "old"}]})
    with repo.make_sessionmaker(engine)() as session:
        org = repo.organizations.require_organization(session, name="old")
        org.policy = {"routing": "weighted", "team": "platform", "audit": "everything"}
        session.commit()
    snap = build_snapshot_from_engine(engine)
    assert (snap.organizations[0].policy.routing, snap.organizations[0].policy.audit) == (
        "weighted",
        "metadata",
    )
    result = _apply(engine, settings, {"organizations": [{"name": "old", "policy": {"routing": "weighted"}}]})
    assert not result.changed  # the same effective policy


def test_shadow_names_only_rules_its_owner_has() -> None:
    """A shadow name the owner has no rule for would be ignored by the data plane, so the
    rule the operator meant to roll out in shadow would enforce: refused with the path."""
    bad = copy.deepcopy(DOC)
    bad["organizations"][0]["policy"]["shadow"] = ["budget", "scopes"]
    bad["models"][0]["shadow"] = ["rpm", "budget"]
    bad["keys"][0]["shadow"] = ["ip", "unpriced"]
    with pytest.raises(ConfigError) as caught:
        parse_config(bad)
    issues = {i.path: i.message for i in caught.value.issues}
    assert set(issues) == {
        "organizations[0].policy.shadow[1]",
        "models[0].shadow[1]",
        "keys[0].shadow[1]",
    }, issues
    assert "'rpm', 'tpm', 'budget' or 'unpriced'" in issues["organizations[0].policy.shadow[1]"]
    assert "'rpm' or 'tpm'" in issues["models[0].shadow[1]"]
    # Every rule an owner has can be shadowed.
    good = copy.deepcopy(DOC)
    good["organizations"][0]["policy"]["shadow"] = ["rpm", "tpm", "budget", "unpriced"]
    good["models"][0]["shadow"] = ["rpm", "tpm"]
    good["keys"][0]["shadow"] = ["rpm", "tpm", "concurrency", "budget", "scopes", "models", "ip"]
    parse_config(good)
