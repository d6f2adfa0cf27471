"""The runtime view of one snapshot: immutable indexes built once, swapped in one assignment.

Pure domain code: takes the snapshot message and plain mappings, returns plain data.
A snapshot that does not validate raises ConfigError and is never swapped in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from switchyard_common.config_schema import normalize_auth_header
from switchyard_common.errors import (
    AuthenticationError,
    ConfigError,
    ConfigIssue,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)
from switchyard_common.proto.controlplane_pb2 import Provider, Snapshot
from switchyard_common.secrets import SecretBox, SecretDecryptError, hash_api_key

from .protocols.ir import TokenUsage
from .providers import adapter_for
from .providers.base import Operation, ProviderRuntime

__all__ = [
    "IndexHolder",
    "KeyRecord",
    "ModelRoute",
    "PriceTable",
    "SnapshotIndex",
    "Target",
    "build_index",
]

_BEARER = b"bearer "


@dataclass(slots=True, frozen=True)
class KeyRecord:
    id: str
    name: str
    org_id: str
    org_name: str
    scopes: frozenset[str]
    # Empty: every model of the key's scopes.
    models: frozenset[str]
    revoked: bool
    expires_at: int  # Unix seconds, 0 = never

    def may_use(self, route: ModelRoute) -> bool:
        if self.scopes and route.capability not in self.scopes:
            return False
        return not self.models or route.name in self.models


@dataclass(slots=True, frozen=True)
class Target:
    runtime: ProviderRuntime
    upstream_model: str
    priority: int
    weight: int


@dataclass(slots=True, frozen=True)
class ModelRoute:
    name: str
    capability: str
    # Sorted by priority; equal priorities are shuffled by weight per call.
    targets: tuple[Target, ...]
    has_ties: bool

    def ordered_targets(self) -> tuple[Target, ...]:
        if not self.has_ties:
            return self.targets
        ordered: list[Target] = []
        group: list[Target] = []
        for target in (*self.targets, None):
            if group and (target is None or target.priority != group[0].priority):
                ordered.extend(_weighted_order(group))
                group = []
            if target is not None:
                group.append(target)
        return tuple(ordered)


def _weighted_order(group: list[Target]) -> list[Target]:
    if len(group) == 1:
        return group
    # Efraimidis-Spirakis: sort by u^(1/w); weight 0 goes last.
    return sorted(
        group,
        key=lambda t: random.random() ** (1.0 / t.weight) if t.weight > 0 else -1.0,
        reverse=True,
    )


@dataclass(slots=True, frozen=True)
class PriceTable:
    per_million: Mapping[str, float]
    currency: str

    def cost(self, usage: TokenUsage) -> float:
        """Cost of one call; cached and reasoning tokens are billed at their own unit
        price when one is set (they are part of input/output tokens in OpenAI usage)."""
        p = self.per_million
        input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
        total = 0.0
        if "cached_input_token" in p and usage.cached_tokens:
            total += p["cached_input_token"] * usage.cached_tokens
            input_tokens -= usage.cached_tokens
        if "reasoning_token" in p and usage.reasoning_tokens:
            total += p["reasoning_token"] * usage.reasoning_tokens
            output_tokens -= usage.reasoning_tokens
        total += p.get("input_token", 0.0) * max(input_tokens, 0)
        total += p.get("output_token", 0.0) * max(output_tokens, 0)
        total += p.get("request", 0.0)
        return total / 1e6


_NO_PRICES = PriceTable(per_million=MappingProxyType({}), currency="USD")


@dataclass(slots=True, frozen=True)
class SnapshotIndex:
    version: int
    snapshot_id: str
    created_at_ms: int
    keys: Mapping[str, KeyRecord]
    models: Mapping[str, ModelRoute]
    prices: Mapping[str, PriceTable]
    providers: Mapping[str, ProviderRuntime]
    # Non-fatal findings (e.g. a credential variable that is not set), for the log.
    warnings: tuple[str, ...] = field(default=())

    def authenticate(
        self, authorization: bytes | None, now: float, api_key: bytes | None = None
    ) -> KeyRecord:
        """Resolve the caller's key: `x-api-key: gk_...` (Anthropic clients) when given,
        else `Authorization: Bearer gk_...`."""
        if api_key:
            return self.authenticate_token(api_key.strip().decode("latin-1"), now)
        if not authorization:
            raise AuthenticationError(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
            )
        if authorization[:7].lower() != _BEARER:
            raise AuthenticationError("the Authorization header must be 'Bearer <key>'")
        return self.authenticate_token(authorization[7:].strip().decode("latin-1"), now)

    def authenticate_token(self, token: str, now: float) -> KeyRecord:
        if not token:
            raise AuthenticationError("missing API key")
        key = self.keys.get(hash_api_key(token))
        if key is None:
            raise AuthenticationError("invalid API key")
        if key.revoked:
            raise AuthenticationError("API key has been revoked", code="revoked_api_key")
        if key.expires_at and key.expires_at <= now:
            raise AuthenticationError("API key has expired", code="expired_api_key")
        return key

    def route_for(self, key: KeyRecord, model: str) -> ModelRoute:
        route = self.models.get(model)
        if route is None:
            raise NotFound(f"the model '{model}' does not exist", param="model")
        if not key.may_use(route):
            raise PermissionDenied(f"this API key may not use the model '{model}'", param="model")
        if not route.targets:
            raise ServiceUnavailable(f"the model '{model}' has no usable provider")
        return route

    def models_for(self, key: KeyRecord) -> list[ModelRoute]:
        return [route for name, route in sorted(self.models.items()) if key.may_use(route)]

    def prices_for(self, model: str) -> PriceTable:
        return self.prices.get(model, _NO_PRICES)


class IndexHolder:
    """Where the serving index lives. Readers take `holder.current` once per request;
    the snapshot client replaces it with one assignment."""

    __slots__ = ("current",)

    def __init__(self, current: SnapshotIndex | None = None) -> None:
        self.current = current

    def swap(self, index: SnapshotIndex) -> None:
        self.current = index


def _provider_runtime(
    provider: Provider,
    box: SecretBox | None,
    env: Mapping[str, str],
    issues: list[ConfigIssue],
    warnings: list[str],
) -> ProviderRuntime | None:
    where = f"providers[{provider.slug}]"
    adapter = adapter_for(provider.api_format)
    if adapter is None:
        warnings.append(f"{where}: api_format '{provider.api_format}' is not served by this data plane")
        return None
    api_key = ""
    if provider.api_key_encrypted:
        if box is None:
            issues.append(
                ConfigIssue(where, "has an encrypted credential but SWITCHYARD_SECRET_KEY is not set")
            )
            return None
        try:
            api_key = box.decrypt(provider.api_key_encrypted)
        except SecretDecryptError:
            issues.append(ConfigIssue(where, "credential does not decrypt with SWITCHYARD_SECRET_KEY"))
            return None
    elif provider.api_key_env:
        api_key = env.get(provider.api_key_env, "")
        if not api_key:
            warnings.append(f"{where}: credential variable {provider.api_key_env} is not set")
    if not adapter.answers_locally and not provider.base_url:
        issues.append(ConfigIssue(where, "has no base_url"))
        return None
    try:
        auth_header = normalize_auth_header(provider.auth_header)
    except ValueError as exc:
        issues.append(ConfigIssue(f"{where}.auth_header", str(exc)))
        return None
    urls = adapter.upstream_urls(provider.base_url, provider.api_path)
    return ProviderRuntime(
        slug=provider.slug,
        api_format=provider.api_format,
        url=urls[Operation.CHAT],
        urls=MappingProxyType(urls),
        headers=adapter.static_headers(api_key, dict(provider.extra_headers), auth_header),
        timeout_seconds=provider.timeout_seconds if provider.timeout_seconds > 0 else 600.0,
        connect_timeout_seconds=provider.connect_timeout_seconds
        if provider.connect_timeout_seconds > 0
        else 10.0,
        adapter=adapter,
    )


def build_index(snapshot: Snapshot, *, secret_key: str, env: Mapping[str, str]) -> SnapshotIndex:
    """Validate `snapshot` and build its indexes; raises ConfigError listing every issue."""
    issues: list[ConfigIssue] = []
    warnings: list[str] = []
    box = SecretBox(secret_key) if secret_key else None

    org_names = {org.id: org.name for org in snapshot.organizations}
    providers: dict[str, ProviderRuntime] = {}
    known_providers: set[str] = set()
    for provider in snapshot.providers:
        if provider.slug in known_providers:
            issues.append(ConfigIssue(f"providers[{provider.slug}]", "duplicate provider slug"))
            continue
        known_providers.add(provider.slug)
        runtime = _provider_runtime(provider, box, env, issues, warnings)
        if runtime is not None:
            providers[provider.slug] = runtime

    models: dict[str, ModelRoute] = {}
    for model in snapshot.models:
        where = f"models[{model.name}]"
        if model.name in models:
            issues.append(ConfigIssue(where, "duplicate model name"))
            continue
        targets: list[Target] = []
        for target in model.targets:
            if target.provider_slug not in known_providers:
                issues.append(
                    ConfigIssue(where, f"target refers to unknown provider '{target.provider_slug}'")
                )
                continue
            runtime = providers.get(target.provider_slug)
            if runtime is None:
                continue  # known but not servable here: already reported
            targets.append(
                Target(runtime, target.upstream_model or model.name, target.priority, target.weight)
            )
        targets.sort(key=lambda t: t.priority)
        priorities = [t.priority for t in targets]
        models[model.name] = ModelRoute(
            name=model.name,
            capability=model.capability or "llm",
            targets=tuple(targets),
            has_ties=len(set(priorities)) != len(priorities),
        )

    keys: dict[str, KeyRecord] = {}
    for key in snapshot.keys:
        where = f"keys[{key.name or key.id}]"
        if key.org_id not in org_names:
            issues.append(ConfigIssue(where, f"belongs to unknown organization '{key.org_id}'"))
            continue
        if len(key.key_hash) != 64:
            issues.append(ConfigIssue(where, "key_hash is not a hex SHA-256"))
            continue
        keys[key.key_hash.lower()] = KeyRecord(
            id=key.id,
            name=key.name,
            org_id=key.org_id,
            org_name=org_names[key.org_id],
            scopes=frozenset(key.scopes),
            models=frozenset(key.models),
            revoked=key.revoked,
            expires_at=key.expires_at,
        )

    per_model: dict[str, dict[str, float]] = {}
    currency: dict[str, str] = {}
    for price in snapshot.prices:
        per_model.setdefault(price.model, {})[price.unit] = price.per_million
        currency.setdefault(price.model, price.currency or "USD")
    prices = {
        name: PriceTable(per_million=MappingProxyType(units), currency=currency[name])
        for name, units in per_model.items()
    }

    if issues:
        raise ConfigError(issues)
    return SnapshotIndex(
        version=snapshot.version,
        snapshot_id=snapshot.id,
        created_at_ms=snapshot.created_at_ms,
        keys=MappingProxyType(keys),
        models=MappingProxyType(models),
        prices=MappingProxyType(prices),
        providers=MappingProxyType(providers),
        warnings=tuple(warnings),
    )
