"""The runtime view of one snapshot: immutable indexes built once, swapped in one assignment.

Pure domain code: takes the snapshot message and plain mappings, returns plain data.
A snapshot that does not validate raises ConfigError and is never swapped in.
"""

from __future__ import annotations

import time
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
from switchyard_common.proto.controlplane_pb2 import ApiKey, Organization, Provider, RateLimits, Snapshot
from switchyard_common.secrets import SecretBox, SecretDecryptError, hash_api_key

from .admission.rules import NO_QUOTA, BudgetRule, Network, RateQuota, budget_rules, networks, quota
from .admission.scopes import KeyRefusal
from .audit_capture import AuditPolicy, audit_policy
from .breakers import BREAKERS_OFF, BreakerPolicy, BreakerRef, breaker_epoch_of, breaker_policy
from .failover import DEFAULT_RETRY, RetryPolicy, retry_policy
from .metering import CallUnits, cost_of
from .price_schedule import PriceSchedule, build_schedules
from .protocols.ir import TokenUsage
from .providers import adapter_for
from .providers.base import Operation, ProviderRuntime
from .routing import PRIORITY, routing_issues

__all__ = [
    "IndexHolder",
    "KeyRecord",
    "ModelRoute",
    "OrgPolicyRecord",
    "PriceTable",
    "SnapshotIndex",
    "Target",
    "build_index",
]

_BEARER = b"bearer "


@dataclass(slots=True, frozen=True)
class OrgPolicyRecord:
    """The enforced part of an organization's policy (routing fields: H2's part below)."""

    id: str
    name: str
    # open | closed: limits when Redis is unreachable (local limiter or 503).
    on_redis_failure: str = "open"
    # flag | refuse: calls to a model without any price.
    unpriced: str = "flag"
    limits: RateQuota = NO_QUOTA
    budgets: tuple[BudgetRule, ...] = ()
    # Rule names (config_schema.SHADOW_RULES) of the org's own rules that only record.
    shadow: frozenset[str] = frozenset()
    # Routing (routing.py): the strategy of models that set none, and what happens when
    # a target's breaker is open or it is over its quota (next_target | fail).
    routing: str = "priority"
    overflow: str = "next_target"
    # Provider slugs the org's models may resolve to; empty = all.
    allowed_providers: frozenset[str] = frozenset()
    retry: RetryPolicy = DEFAULT_RETRY
    breaker: BreakerPolicy = BREAKERS_OFF
    # What the audit log keeps of the org's calls; None = audit off.
    audit: AuditPolicy | None = None


_NO_ORG = OrgPolicyRecord(id="", name="")


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
    disabled: bool = False
    # Client networks allowed to use the key; empty = any.
    networks: tuple[Network, ...] = ()
    limits: RateQuota = NO_QUOTA
    concurrency: int = 0
    budgets: tuple[BudgetRule, ...] = ()
    # Rule names of the key's own rules that only record (rpm, scopes, ip, ...).
    shadow: frozenset[str] = frozenset()
    org: OrgPolicyRecord = _NO_ORG
    # Some counted rule (rate, concurrency, budget) of the key or its org applies: when
    # False (and the model has no limits) admission makes no Redis call at all.
    governed: bool = False

    def may_use(self, route: ModelRoute) -> bool:
        return self.refusal(route) is None

    def refusal(self, route: ModelRoute, skip: frozenset[str] = frozenset()) -> tuple[str, str] | None:
        """(rule, message) when the key's scopes or model list exclude `route`; rules
        named in `skip` (shadow mode) are not checked."""
        if self.scopes and route.capability not in self.scopes and "scopes" not in skip:
            return "scopes", f"this API key lacks the '{route.capability}' scope"
        if self.models and route.name not in self.models and "models" not in skip:
            return "models", f"this API key may not use the model '{route.name}'"
        return None


@dataclass(slots=True, frozen=True)
class Target:
    runtime: ProviderRuntime
    upstream_model: str
    priority: int
    weight: int
    # The target's own quota (counted per provider and upstream model); see
    # Governor.target_admit.
    limits: RateQuota = NO_QUOTA
    # Its circuit breaker (provider, breaker_epoch, upstream model); also the key of its
    # latency average.
    breaker: BreakerRef = BreakerRef.of("", "", "")

    @property
    def price_name(self) -> str:
        """The name of the target's own prices (what the provider charges)."""
        return f"{self.runtime.slug}/{self.upstream_model}"


@dataclass(slots=True, frozen=True)
class ModelRoute:
    name: str
    capability: str
    # Sorted by priority (routing.py orders them per call); disabled providers left out.
    targets: tuple[Target, ...]
    has_ties: bool
    # Limits across all callers of the model, counted per organization.
    limits: RateQuota = NO_QUOTA
    shadow: frozenset[str] = frozenset()
    # Output tokens a budget reservation assumes when a request sets no max_tokens.
    max_output_tokens: int = 4096
    # Some target has its own quota (admission then counts the input tokens).
    target_quotas: bool = False
    # Routing strategy overriding the organization's; empty = the organization's.
    routing: str = ""


@dataclass(slots=True, frozen=True)
class PriceTable:
    per_million: Mapping[str, float]
    currency: str

    def cost(self, units: CallUnits | TokenUsage) -> float:
        """Cost of one call's units (metering.cost_of: every unit kind; cached,
        cache-write and reasoning tokens at their own price when one is set). A
        TokenUsage is one request with those tokens."""
        if isinstance(units, TokenUsage):
            units = CallUnits.of(units)
        return cost_of(self.per_million, units)


_NO_PRICES = PriceTable(per_million=MappingProxyType({}), currency="USD")


@dataclass(slots=True, frozen=True)
class SnapshotIndex:
    version: int
    snapshot_id: str
    created_at_ms: int
    keys: Mapping[str, KeyRecord]
    models: Mapping[str, ModelRoute]
    # Public model names and target names (`<provider>/<upstream model>`) -> schedule.
    prices: Mapping[str, PriceSchedule[PriceTable]]
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
        if key.disabled:
            # A known, valid key its owner switched off: 403 (not 401), so that SDKs and
            # operators can tell it from a wrong key (docs/limits.md).
            raise PermissionDenied("this API key is disabled", code="key_disabled")
        return key

    def route_for(self, key: KeyRecord, model: str) -> ModelRoute:
        route = self.models.get(model)
        if route is None:
            raise NotFound(f"the model '{model}' does not exist", param="model")
        # A rule in the key's shadow list admits the call (the governor records it).
        refusal = key.refusal(route, key.shadow)
        if refusal is not None:
            code = "missing_scope" if refusal[0] == "scopes" else "model_not_allowed"
            raise KeyRefusal(refusal[1], rule=f"key.{refusal[0]}", code=code, param="model")
        if not route.targets:
            raise ServiceUnavailable(f"the model '{model}' has no usable provider")
        return route

    def models_for(self, key: KeyRecord) -> list[ModelRoute]:
        return [route for name, route in sorted(self.models.items()) if key.may_use(route)]

    def prices_for(self, model: str, now: float | None = None) -> PriceTable:
        """The prices of `model` (public name or `<provider>/<upstream model>`) in
        effect at `now` (Unix seconds; default: the current time); empty if none."""
        return self.price_at(model, time.time() if now is None else now) or _NO_PRICES

    def price_at(self, name: str, now: float) -> PriceTable | None:
        schedule = self.prices.get(name)
        return schedule.at(int(now * 1000)) if schedule is not None else None


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


def _org_record(org: Organization) -> OrgPolicyRecord:
    policy = org.policy
    return OrgPolicyRecord(
        id=org.id,
        name=org.name,
        on_redis_failure=policy.on_redis_failure or "open",
        unpriced=policy.unpriced or "flag",
        limits=quota(policy.limits),
        budgets=budget_rules(policy.budgets),
        shadow=frozenset(policy.shadow),
        routing=policy.routing or PRIORITY,
        overflow=policy.overflow or "next_target",
        allowed_providers=frozenset(policy.allowed_providers),
        retry=retry_policy(policy.retry),
        breaker=breaker_policy(policy.breaker),
        audit=_audit_policy(org),
    )


def _audit_policy(org: Organization) -> AuditPolicy | None:
    policy = org.policy
    try:
        return audit_policy(
            policy.audit or "metadata", policy.audit_max_body_bytes, policy.audit_redact_paths
        )
    except ValueError:
        # The control plane validates paths; should a bad one arrive anyway, keep no
        # bodies rather than keep them unredacted.
        return audit_policy("metadata", 0, ())


def _key_record(key: ApiKey, org: OrgPolicyRecord, issues: list[ConfigIssue]) -> KeyRecord:
    where = f"keys[{key.name or key.id}]"
    try:
        allowed = networks(key.allowed_cidrs)
    except ValueError as exc:
        issues.append(ConfigIssue(f"{where}.allowed_cidrs", str(exc)))
        allowed = ()
    limits = quota(RateLimits(rpm=key.limits.rpm, tpm=key.limits.tpm))
    concurrency = max(0, key.limits.concurrency)
    budgets = budget_rules(key.limits.budgets)
    return KeyRecord(
        id=key.id,
        name=key.name,
        org_id=key.org_id,
        org_name=org.name,
        scopes=frozenset(key.scopes),
        models=frozenset(key.models),
        revoked=key.revoked,
        expires_at=key.expires_at,
        disabled=key.disabled,
        networks=allowed,
        limits=limits,
        concurrency=concurrency,
        budgets=budgets,
        shadow=frozenset(key.shadow),
        org=org,
        governed=bool(limits.active or concurrency or budgets or org.limits.active or org.budgets),
    )


def build_index(snapshot: Snapshot, *, secret_key: str, env: Mapping[str, str]) -> SnapshotIndex:
    """Validate `snapshot` and build its indexes; raises ConfigError listing every issue."""
    issues: list[ConfigIssue] = []
    warnings: list[str] = []
    box = SecretBox(secret_key) if secret_key else None

    orgs = {org.id: _org_record(org) for org in snapshot.organizations}
    issues.extend(routing_issues(snapshot))
    providers: dict[str, ProviderRuntime] = {}
    epochs: dict[str, str] = {}
    known_providers: set[str] = set()
    for provider in snapshot.providers:
        if provider.slug in known_providers:
            issues.append(ConfigIssue(f"providers[{provider.slug}]", "duplicate provider slug"))
            continue
        known_providers.add(provider.slug)
        if provider.disabled:
            continue  # never routed to; its targets are left out of every model
        epochs[provider.slug] = breaker_epoch_of(provider)
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
            upstream_model = target.upstream_model or model.name
            targets.append(
                Target(
                    runtime,
                    upstream_model,
                    target.priority,
                    target.weight,
                    limits=quota(target.limits),
                    breaker=BreakerRef.of(runtime.slug, epochs[runtime.slug], upstream_model),
                )
            )
        targets.sort(key=lambda t: t.priority)
        priorities = [t.priority for t in targets]
        models[model.name] = ModelRoute(
            name=model.name,
            capability=model.capability or "llm",
            targets=tuple(targets),
            has_ties=len(set(priorities)) != len(priorities),
            limits=quota(model.limits),
            shadow=frozenset(model.shadow),
            max_output_tokens=model.max_output_tokens if model.max_output_tokens > 0 else 4096,
            target_quotas=any(t.limits.active for t in targets),
            routing=model.routing,
        )

    keys: dict[str, KeyRecord] = {}
    for key in snapshot.keys:
        where = f"keys[{key.name or key.id}]"
        if key.org_id not in orgs:
            issues.append(ConfigIssue(where, f"belongs to unknown organization '{key.org_id}'"))
            continue
        if len(key.key_hash) != 64:
            issues.append(ConfigIssue(where, "key_hash is not a hex SHA-256"))
            continue
        keys[key.key_hash.lower()] = _key_record(key, orgs[key.org_id], issues)

    # Prices of public models (what callers pay) and of targets, named
    # `<provider>/<upstream model>` (what providers charge), each a dated schedule.
    prices, price_warnings = build_schedules(
        snapshot.prices, lambda rates, currency: PriceTable(MappingProxyType(dict(rates)), currency)
    )
    warnings.extend(price_warnings)

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
