"""config_plan is pure: state + document in, changes out."""

from __future__ import annotations

from dataclasses import replace

from switchyard_common.config_schema import parse_config
from switchyard_common.secrets import hash_api_key
from switchyard_controlplane.config_plan import (
    CurrentState,
    KeyState,
    ModelState,
    PriceState,
    ProviderState,
    normalize_limits,
    plan_changes,
)

KEY = "gk_" + "a" * 40

DOC = parse_config(
    {
        "organizations": [{"name": "acme", "policy": {"routing": "priority"}}],
        "providers": [
            {"slug": "up", "api_format": "openai", "base_url": "https://up.example", "api_key": "sk-1"},
            {
                "slug": "env",
                "api_format": "openai",
                "base_url": "https://env.example",
                "api_key_env": "ENV_KEY",
            },
        ],
        "models": [{"name": "chat", "targets": [{"provider": "up", "model": "m1"}]}],
        "prices": [{"model": "chat", "unit": "input_token", "per_million": 1.5}],
        "keys": [{"name": "svc", "org": "acme", "value": KEY, "limits": {"rpm": 10}}],
    }
)


def _state() -> CurrentState:
    return CurrentState(
        organizations={"acme": {"routing": "priority"}},
        providers={
            "up": ProviderState(
                api_format="openai", base_url="https://up.example", api_key="sk-1", has_api_key=True
            ),
            "env": ProviderState(api_format="openai", base_url="https://env.example", api_key_env="ENV_KEY"),
        },
        models={"chat": ModelState(capability="llm", targets=(("up", "m1", 0, 1, {}),))},
        prices={("chat", "input_token", 0): PriceState(per_million=1.5, currency="USD")},
        keys={
            ("acme", "svc"): KeyState(
                key_hash=hash_api_key(KEY), scopes=("llm",), models=(), limits={"rpm": 10}, revoked=False
            )
        },
    )


def _actions(changes):  # type: ignore[no-untyped-def]
    return {(c.kind, c.name): (c.action, c.fields) for c in changes}


def test_everything_creates_on_empty_state() -> None:
    changes = plan_changes(CurrentState(), DOC)
    assert [c.kind for c in changes] == ["organization", "provider", "provider", "model", "price", "key"]
    assert {c.action for c in changes} == {"create"}
    assert changes[-1].name == "acme/svc"
    assert changes[4].name == "chat/input_token"


def test_identical_state_is_unchanged() -> None:
    assert {c.action for c in plan_changes(_state(), DOC)} == {"unchanged"}


def test_field_level_updates_are_reported() -> None:
    state = _state()
    state = CurrentState(
        organizations={"acme": {"routing": "weighted"}},
        providers={
            **state.providers,
            "up": ProviderState(
                api_format="openai", base_url="https://up.example", api_key="sk-OLD", has_api_key=True
            ),
        },
        models={"chat": ModelState(capability="llm", targets=(("up", "m2", 0, 1, {}),))},
        prices={("chat", "input_token", 0): PriceState(per_million=2.0, currency="USD")},
        keys={
            ("acme", "svc"): KeyState(key_hash="0" * 64, scopes=("llm",), models=(), limits={}, revoked=False)
        },
    )
    actions = _actions(plan_changes(state, DOC))
    assert actions[("organization", "acme")] == ("update", ("policy",))
    assert actions[("provider", "up")] == ("update", ("api_key",))
    assert actions[("provider", "env")] == ("unchanged", ())
    assert actions[("model", "chat")] == ("update", ("targets",))
    assert actions[("price", "chat/input_token")] == ("update", ("per_million",))
    assert actions[("key", "acme/svc")] == ("update", ("limits", "value"))


def test_switching_credential_kind_is_an_update() -> None:
    state = _state()
    providers = dict(state.providers)
    providers["env"] = ProviderState(
        api_format="openai", base_url="https://env.example", api_key="literal", has_api_key=True
    )
    providers["up"] = ProviderState(api_format="openai", base_url="https://up.example", api_key_env="OLD_ENV")
    changes = _actions(plan_changes(replace(state, providers=providers), DOC))
    assert changes[("provider", "env")] == ("update", ("api_key_env", "api_key"))
    assert changes[("provider", "up")] == ("update", ("api_key", "api_key_env"))


def test_omitted_credential_leaves_stored_one_alone() -> None:
    doc = parse_config(
        {"providers": [{"slug": "up", "api_format": "openai", "base_url": "https://up.example"}]}
    )
    state = CurrentState(
        providers={"up": ProviderState(api_format="openai", base_url="https://up.example", has_api_key=True)}
    )
    assert plan_changes(state, doc)[0].action == "unchanged"


def test_key_without_value_keeps_its_hash_and_revocation_is_one_way() -> None:
    doc = parse_config({"keys": [{"name": "svc", "org": "acme"}]})
    revoked = KeyState(key_hash="x" * 64, scopes=("llm",), models=(), limits={}, revoked=True)
    assert plan_changes(CurrentState(keys={("acme", "svc"): revoked}), doc)[0].action == "unchanged"
    doc = parse_config({"keys": [{"name": "svc", "org": "acme", "revoked": True}]})
    active = KeyState(key_hash="x" * 64, scopes=("llm",), models=(), limits={}, revoked=False)
    change = plan_changes(CurrentState(keys={("acme", "svc"): active}), doc)[0]
    assert (change.action, change.fields) == ("update", ("revoked",))


def test_normalize_limits_drops_unset_values() -> None:
    assert normalize_limits({"rpm": 5, "tpm": None}) == {"rpm": 5}
    assert normalize_limits(None) == {}
    assert normalize_limits({"rpm": 0, "concurrency": 2}) == {"concurrency": 2}  # 0 = no limit
    assert normalize_limits({"budget": {"amount": 3}}) == {
        "budgets": [{"amount": 3.0, "currency": "USD", "period": "month"}]
    }
    # The shorthand and the list are the same limits.
    assert normalize_limits({"budget": {"amount": 3}, "budgets": [{"amount": 9, "period": "day"}]}) == (
        normalize_limits({"budgets": [{"amount": 3}, {"amount": 9, "period": "day"}]})
    )


def test_change_as_dict() -> None:
    change = plan_changes(CurrentState(), DOC)[0]
    assert change.as_dict() == {"kind": "organization", "name": "acme", "action": "create"}
