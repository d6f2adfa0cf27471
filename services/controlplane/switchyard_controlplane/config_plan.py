"""Plan a config-as-code apply: compare stored state with a document, entity by entity.

Pure domain code over plain data (no database, no web framework), so `apply`, `diff`
and dry runs share one definition of "what would change". Upserts are by natural key
(org name, provider slug, model name, (model, unit, effective_from), (org, key name));
nothing is ever planned for deletion. JSON-valued fields are compared in the canonical
forms of config_values, so a document and the state it produced always compare equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from switchyard_common.config_schema import (
    ConfigDocument,
    KeySpec,
    ModelSpec,
    PriceSpec,
    ProviderSpec,
    TargetSpec,
    policy_document,
)
from switchyard_common.secrets import hash_api_key

from .config_values import (
    ms_from_datetime,
    normalize_key_limits,
    normalize_policy,
    normalize_rate_limits,
)

__all__ = [
    "Action",
    "Change",
    "CurrentState",
    "Kind",
    "KeyState",
    "ModelState",
    "PriceSlot",
    "PriceState",
    "ProviderState",
    "TargetTuple",
    "normalize_limits",
    "plan_changes",
    "price_name",
    "price_slot",
    "spec_target_tuple",
]

Kind = Literal["organization", "provider", "model", "price", "key"]
Action = Literal["create", "update", "unchanged"]
# (provider slug, upstream model, priority, weight, normalized limits), in document order.
TargetTuple = tuple[str, str, int, int, dict[str, int]]
# (model, unit, effective_from in unix ms; 0 = always)
PriceSlot = tuple[str, str, int]

# Key limits as stored (kept under this name for the REST routes and tests).
normalize_limits = normalize_key_limits


def spec_target_tuple(target: TargetSpec) -> TargetTuple:
    return (
        target.provider,
        target.model,
        target.priority,
        target.weight,
        normalize_rate_limits(target.limits),
    )


def price_slot(price: PriceSpec) -> PriceSlot:
    return (price.model, price.unit, ms_from_datetime(price.effective_from))


def price_name(model: str, unit: str, effective_from: datetime | None) -> str:
    """How changes name a price: `model/unit`, plus `@<date>` for a scheduled one."""
    name = f"{model}/{unit}"
    return f"{name}@{effective_from.isoformat()}" if effective_from is not None else name


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
    enabled: bool = True


@dataclass(frozen=True)
class ModelState:
    capability: str
    targets: tuple[TargetTuple, ...]
    routing: str | None = None
    limits: Mapping[str, Any] = field(default_factory=dict)
    shadow: tuple[str, ...] = ()
    max_output_tokens: int = 4096


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
    enabled: bool = True
    expires_at: datetime | None = None
    allowed_ips: tuple[str, ...] = ()
    shadow: tuple[str, ...] = ()


@dataclass(frozen=True)
class CurrentState:
    # Stored policy documents (normalised before comparing).
    organizations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    providers: Mapping[str, ProviderState] = field(default_factory=dict)
    models: Mapping[str, ModelState] = field(default_factory=dict)
    prices: Mapping[PriceSlot, PriceState] = field(default_factory=dict)
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
            ("enabled", spec.enabled, cur.enabled),
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
    fields = [
        name
        for name, wanted, have in (
            ("scopes", tuple(spec.scopes), tuple(cur.scopes)),
            ("models", tuple(spec.models), tuple(cur.models)),
            ("limits", normalize_key_limits(spec.limits), normalize_key_limits(cur.limits)),
            ("enabled", spec.enabled, cur.enabled),
            ("expires_at", ms_from_datetime(spec.expires_at), ms_from_datetime(cur.expires_at)),
            ("allowed_ips", tuple(spec.allowed_ips), tuple(cur.allowed_ips)),
            ("shadow", tuple(spec.shadow), tuple(cur.shadow)),
        )
        if wanted != have
    ]
    if spec.value is not None and hash_api_key(spec.value) != cur.key_hash:
        fields.append("value")
    # Revocation is one-way: the default `revoked: false` must not resurrect a key an
    # operator revoked, so only `revoked: true` on an active key is a change. (`enabled`
    # is the reversible switch.)
    if spec.revoked and not cur.revoked:
        fields.append("revoked")
    return fields


def _model_fields(spec: ModelSpec, cur: ModelState) -> list[str]:
    return [
        name
        for name, wanted, have in (
            ("capability", spec.capability, cur.capability),
            ("routing", spec.routing, cur.routing),
            ("limits", normalize_rate_limits(spec.limits), normalize_rate_limits(cur.limits)),
            ("shadow", tuple(spec.shadow), tuple(cur.shadow)),
            ("max_output_tokens", spec.max_output_tokens, cur.max_output_tokens),
            ("targets", tuple(spec_target_tuple(t) for t in spec.targets), tuple(cur.targets)),
        )
        if wanted != have
    ]


def plan_changes(current: CurrentState, doc: ConfigDocument) -> list[Change]:
    """One Change per document entry, in apply order (orgs, providers, models, prices, keys)."""
    changes: list[Change] = []
    for org in doc.organizations:
        policy = current.organizations.get(org.name)
        fields = (
            ["policy"]
            if policy is not None and normalize_policy(policy) != policy_document(org.policy)
            else []
        )
        changes.append(_change("organization", org.name, policy is not None, fields))
    for provider in doc.providers:
        state = current.providers.get(provider.slug)
        fields = _provider_fields(provider, state) if state is not None else []
        changes.append(_change("provider", provider.slug, state is not None, fields))
    for model in doc.models:
        mstate = current.models.get(model.name)
        fields = _model_fields(model, mstate) if mstate is not None else []
        changes.append(_change("model", model.name, mstate is not None, fields))
    for price in doc.prices:
        pstate = current.prices.get(price_slot(price))
        fields = []
        if pstate is not None:
            if pstate.per_million != price.per_million:
                fields.append("per_million")
            if pstate.currency != price.currency:
                fields.append("currency")
        name = price_name(price.model, price.unit, price.effective_from)
        changes.append(_change("price", name, pstate is not None, fields))
    for key in doc.keys:
        kstate = current.keys.get((key.org, key.name))
        fields = _key_fields(key, kstate) if kstate is not None else []
        changes.append(_change("key", f"{key.org}/{key.name}", kstate is not None, fields))
    return changes
