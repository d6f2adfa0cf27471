"""Plan a config-as-code apply: compare stored state with a document, entity by entity.

Pure domain code over plain data (no database, no web framework), so `apply`, `diff`
and dry runs share one definition of "what would change". Upserts are by natural key
(org name, provider slug, model name, (model, unit), (org, key name)); nothing is ever
planned for deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from switchyard_common.config_schema import ConfigDocument, KeyLimitsSpec, KeySpec, ProviderSpec
from switchyard_common.secrets import hash_api_key

__all__ = [
    "Action",
    "Change",
    "CurrentState",
    "Kind",
    "KeyState",
    "ModelState",
    "PriceState",
    "ProviderState",
    "TargetTuple",
    "normalize_limits",
    "plan_changes",
]

Kind = Literal["organization", "provider", "model", "price", "key"]
Action = Literal["create", "update", "unchanged"]
# (provider slug, upstream model, priority, weight), in document order.
TargetTuple = tuple[str, str, int, int]


@dataclass(frozen=True)
class ProviderState:
    api_format: str
    base_url: str = ""
    api_path: str = ""
    # Decrypted stored credential; None when there is none or it no longer decrypts.
    api_key: str | None = None
    has_api_key: bool = False
    api_key_env: str | None = None
    auth_header: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 600.0
    connect_timeout_seconds: float = 10.0
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelState:
    capability: str
    targets: tuple[TargetTuple, ...]


@dataclass(frozen=True)
class PriceState:
    per_million: float
    currency: str


@dataclass(frozen=True)
class KeyState:
    key_hash: str
    scopes: tuple[str, ...]
    models: tuple[str, ...]
    limits: Mapping[str, Any]
    revoked: bool


@dataclass(frozen=True)
class CurrentState:
    organizations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    providers: Mapping[str, ProviderState] = field(default_factory=dict)
    models: Mapping[str, ModelState] = field(default_factory=dict)
    prices: Mapping[tuple[str, str], PriceState] = field(default_factory=dict)
    keys: Mapping[tuple[str, str], KeyState] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    kind: Kind
    name: str
    action: Action
    # For updates: which fields differ (credentials are named, never shown).
    fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action}
        if self.fields:
            out["fields"] = list(self.fields)
        return out


def normalize_limits(limits: Mapping[str, Any] | KeyLimitsSpec | None) -> dict[str, Any]:
    """Canonical stored form of key limits: unset limits are absent."""
    spec = limits if isinstance(limits, KeyLimitsSpec) else KeyLimitsSpec.model_validate(dict(limits or {}))
    return spec.model_dump(exclude_none=True)


def _change(kind: Kind, name: str, exists: bool, fields: list[str]) -> Change:
    if not exists:
        return Change(kind, name, "create")
    return Change(kind, name, "update" if fields else "unchanged", tuple(fields))


def _provider_fields(spec: ProviderSpec, cur: ProviderState) -> list[str]:
    fields = [
        name
        for name, wanted, have in (
            ("api_format", spec.api_format, cur.api_format),
            ("base_url", spec.base_url, cur.base_url),
            ("api_path", spec.api_path, cur.api_path),
            ("auth_header", spec.auth_header, cur.auth_header),
            ("headers", dict(spec.headers), dict(cur.headers)),
            ("timeout_seconds", spec.timeout_seconds, cur.timeout_seconds),
            ("connect_timeout_seconds", spec.connect_timeout_seconds, cur.connect_timeout_seconds),
            ("models", tuple(spec.models), tuple(cur.models)),
        )
        if wanted != have
    ]
    # A literal credential replaces any env reference and vice versa; a document that
    # names neither (e.g. an export, which redacts secrets) leaves the credential alone.
    if spec.api_key:
        if cur.api_key != spec.api_key:
            fields.append("api_key")
        if cur.api_key_env is not None:
            fields.append("api_key_env")
    elif spec.api_key_env:
        if cur.api_key_env != spec.api_key_env:
            fields.append("api_key_env")
        if cur.has_api_key:
            fields.append("api_key")
    return fields


def _key_fields(spec: KeySpec, cur: KeyState) -> list[str]:
    fields = []
    if tuple(spec.scopes) != tuple(cur.scopes):
        fields.append("scopes")
    if tuple(spec.models) != tuple(cur.models):
        fields.append("models")
    if normalize_limits(spec.limits) != normalize_limits(cur.limits):
        fields.append("limits")
    if spec.value is not None and hash_api_key(spec.value) != cur.key_hash:
        fields.append("value")
    # Revocation is one-way: the default `revoked: false` must not resurrect a key an
    # operator revoked, so only `revoked: true` on an active key is a change.
    if spec.revoked and not cur.revoked:
        fields.append("revoked")
    return fields


def plan_changes(current: CurrentState, doc: ConfigDocument) -> list[Change]:
    """One Change per document entry, in apply order (orgs, providers, models, prices, keys)."""
    changes: list[Change] = []
    for org in doc.organizations:
        policy = current.organizations.get(org.name)
        fields = ["policy"] if policy is not None and dict(policy) != dict(org.policy) else []
        changes.append(_change("organization", org.name, policy is not None, fields))
    for provider in doc.providers:
        state = current.providers.get(provider.slug)
        fields = _provider_fields(provider, state) if state is not None else []
        changes.append(_change("provider", provider.slug, state is not None, fields))
    for model in doc.models:
        mstate = current.models.get(model.name)
        fields = []
        if mstate is not None:
            if mstate.capability != model.capability:
                fields.append("capability")
            wanted = tuple((t.provider, t.model, t.priority, t.weight) for t in model.targets)
            if wanted != tuple(mstate.targets):
                fields.append("targets")
        changes.append(_change("model", model.name, mstate is not None, fields))
    for price in doc.prices:
        pstate = current.prices.get((price.model, price.unit))
        fields = []
        if pstate is not None:
            if pstate.per_million != price.per_million:
                fields.append("per_million")
            if pstate.currency != price.currency:
                fields.append("currency")
        changes.append(_change("price", f"{price.model}/{price.unit}", pstate is not None, fields))
    for key in doc.keys:
        kstate = current.keys.get((key.org, key.name))
        fields = _key_fields(key, kstate) if kstate is not None else []
        changes.append(_change("key", f"{key.org}/{key.name}", kstate is not None, fields))
    return changes
