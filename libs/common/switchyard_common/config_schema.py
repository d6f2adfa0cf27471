"""The config-as-code document (design.md section 3), shared by `switchyard apply`,
`switchyard up --config` and the control plane's apply endpoint.

Validation is complete before anything is written: unknown fields, bad URLs and
dangling references are all reported, each with its path inside the document.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .audit import parse_json_path
from .errors import ConfigError, ConfigIssue

__all__ = [
    "API_FORMATS",
    "AUTH_HEADER_BEARER",
    "AUTH_HEADER_NONE",
    "CAPABILITIES",
    "KEY_SCOPES",
    "PRICE_UNITS",
    "RETRY_CLASSES",
    "SHADOW_RULES",
    "KeyShadowRule",
    "ModelShadowRule",
    "OrgShadowRule",
    "BreakerSpec",
    "BudgetSpec",
    "OrgLimitsSpec",
    "OrgPolicySpec",
    "RateLimitsSpec",
    "RetrySpec",
    "ConfigDocument",
    "KeyLimitsSpec",
    "KeySpec",
    "ModelSpec",
    "OrganizationSpec",
    "PriceSpec",
    "ProviderSpec",
    "TargetSpec",
    "load_config_file",
    "normalize_auth_header",
    "parse_config",
    "price_subject_provider",
]

API_FORMATS = ("openai", "anthropic", "gemini", "azure", "mock")
# `ProviderSpec.auth_header` values with a meaning of their own; anything else non-empty
# is the name of the header that carries the raw credential.
AUTH_HEADER_BEARER = "bearer"
AUTH_HEADER_NONE = "none"
# RFC 9110 `token`: the characters a header field name may use.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the HTTP client owns (framing, routing, body type): a credential there would
# break the request rather than authenticate it.
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection"})
CAPABILITIES = ("llm", "embedding", "image", "asr", "tts", "ocr", "vision-segment")
# What a key may be allowed to do: every model capability, plus "vision" (image inputs
# to chat models) and "mcp".
KEY_SCOPES = (*CAPABILITIES, "vision", "mcp")
PriceUnit = Literal[
    "input_token",
    "output_token",
    "cached_input_token",
    "cache_write_token",
    "reasoning_token",
    "request",
    "image",
    "page",
    "second",
    "character",
]
# The tuples are the Literals' values: one list to keep up to date.
PRICE_UNITS: tuple[PriceUnit, ...] = get_args(PriceUnit)
RoutingStrategy = Literal["priority", "weighted", "least_latency", "lowest_cost"]
# Failure classes a retry policy may name, besides exact statuses ("408", "529").
RETRY_CLASSES = ("connect_error", "timeout", "429", "5xx")
# Rules that `shadow` may name: they then admit the call and only record the refusal.
ShadowRule = Literal["rpm", "tpm", "concurrency", "budget", "scopes", "models", "ip", "unpriced"]
SHADOW_RULES: tuple[ShadowRule, ...] = get_args(ShadowRule)
# Each owner may name only the rules it has: a name its data plane would ignore would
# leave the rule enforcing while the operator believes it only records.
KeyShadowRule = Literal["rpm", "tpm", "concurrency", "budget", "scopes", "models", "ip"]
ModelShadowRule = Literal["rpm", "tpm"]
OrgShadowRule = Literal["rpm", "tpm", "budget", "unpriced"]


def normalize_auth_header(value: str) -> str:
    """The canonical form of a provider's `auth_header` ("bearer" and "none" lower-case,
    header names as written); ValueError when it is neither those nor a usable header name."""
    value = value.strip()
    if value.lower() in (AUTH_HEADER_BEARER, AUTH_HEADER_NONE):
        return value.lower()
    if value and not _HEADER_NAME.fullmatch(value):
        raise ValueError(
            f"not a valid HTTP header name: {value!r} (use '{AUTH_HEADER_BEARER}', "
            f"'{AUTH_HEADER_NONE}' or a header name such as X-Api-Key)"
        )
    if value.lower() in _RESERVED_HEADERS:
        raise ValueError(f"{value!r} cannot carry the credential")
    return value


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are UTC, so the same instant always compares (and is stored) equal."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def price_subject_provider(model: str, providers: set[str] | frozenset[str]) -> str | None:
    """The provider slug of a target price's `model` (`<provider-slug>/<upstream-model>`),
    or None when `model` does not name a known provider that way."""
    slug, sep, upstream = model.partition("/")
    return slug if sep and upstream and slug in providers else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitsSpec(_Strict):
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)


class BudgetSpec(_Strict):
    amount: float = Field(gt=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    period: Literal["day", "week", "month", "total"] = "month"


class RetrySpec(_Strict):
    # Failure classes that move the call to the next target.
    on: list[str] = Field(default_factory=lambda: list(RETRY_CLASSES))
    max_attempts: int = Field(default=0, ge=0, le=20)  # 0 = one per target
    deadline_seconds: float = Field(default=0.0, ge=0)  # 0 = none

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML) reads a bare `on:` key as the boolean True.
        if isinstance(data, dict) and True in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("on", mode="before")
    @classmethod
    def _statuses_as_text(cls, value: Any) -> Any:
        # `on: [429, 5xx]`: a bare status is a YAML integer.
        if isinstance(value, list):
            return [
                str(item) if isinstance(item, int) and not isinstance(item, bool) else item for item in value
            ]
        return value

    @field_validator("on")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in RETRY_CLASSES and not (item.isdigit() and 400 <= int(item) <= 599):
                raise ValueError(
                    f"unknown failure class {item!r} (use {', '.join(RETRY_CLASSES)} or a status 400-599)"
                )
        return value


class BreakerSpec(_Strict):
    failures: int = Field(default=5, ge=0)  # consecutive failures that open it; 0 = off
    cooldown_seconds: float = Field(default=30.0, gt=0)


class OrgLimitsSpec(RateLimitsSpec):
    budgets: list[BudgetSpec] = Field(default_factory=list)


class OrgPolicySpec(_Strict):
    routing: RoutingStrategy = "priority"
    overflow: Literal["next_target", "fail"] = "next_target"
    audit: Literal["off", "metadata", "full"] = "metadata"
    on_redis_failure: Literal["open", "closed"] = "open"
    unpriced: Literal["flag", "refuse"] = "flag"
    # Providers the organization's models may resolve to; empty = all.
    providers: list[str] = Field(default_factory=list)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    limits: OrgLimitsSpec = Field(default_factory=OrgLimitsSpec)
    shadow: list[OrgShadowRule] = Field(default_factory=list)
    audit_retention_days: int = Field(default=30, ge=1)
    # Bodies travel inside the usage event: the cap keeps events under NATS's 1 MiB
    # default max_payload even with both bodies at the limit.
    audit_max_body_bytes: int = Field(default=65536, ge=0, le=262144)
    audit_redact_paths: list[str] = Field(default_factory=list)

    @field_validator("audit_redact_paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            parse_json_path(path)  # ValueError names the problem
        return value


class OrganizationSpec(_Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    policy: OrgPolicySpec = Field(default_factory=OrgPolicySpec)


class ProviderSpec(_Strict):
    slug: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    api_format: Literal["openai", "anthropic", "gemini", "azure", "mock"]
    base_url: str = ""
    api_path: str = ""
    api_key: str | None = None
    api_key_env: str | None = None
    # Empty: the api_format's own header; "bearer": `Authorization: Bearer <key>`;
    # "none": no credential sent; otherwise a header name carrying the raw key.
    auth_header: str = Field(default="", max_length=100)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=600.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    models: list[str] = Field(default_factory=list)
    enabled: bool = True

    @field_validator("auth_header")
    @classmethod
    def _auth_header(cls, value: str) -> str:
        return normalize_auth_header(value)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            return value
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")


class TargetSpec(_Strict):
    provider: str
    model: str
    priority: int = 0
    weight: int = Field(default=1, ge=0)
    # The target's own quota: when reached, calls overflow to the next target.
    limits: RateLimitsSpec = Field(default_factory=RateLimitsSpec)


class ModelSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    capability: Literal["llm", "embedding", "image", "asr", "tts", "ocr", "vision-segment"] = "llm"
    targets: list[TargetSpec] = Field(min_length=1)
    # Overrides the organization's routing strategy; None = the organization's.
    routing: RoutingStrategy | None = None
    # Per organization, across all its callers of this model.
    limits: RateLimitsSpec = Field(default_factory=RateLimitsSpec)
    shadow: list[ModelShadowRule] = Field(default_factory=list)
    # Output tokens a budget reservation assumes when a request sets no max_tokens.
    max_output_tokens: int = Field(default=4096, ge=1)


class PriceSpec(_Strict):
    model: str
    unit: PriceUnit
    per_million: float = Field(ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    # From when this price applies (UTC); None = always. Several prices for one
    # (model, unit) with different dates make a schedule.
    effective_from: datetime | None = None

    @field_validator("effective_from")
    @classmethod
    def _effective_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class KeyLimitsSpec(RateLimitsSpec):
    concurrency: int | None = Field(default=None, ge=0)
    # One budget (the common case) or several (e.g. per day and per month).
    budget: BudgetSpec | None = None
    budgets: list[BudgetSpec] = Field(default_factory=list)

    def all_budgets(self) -> list[BudgetSpec]:
        return ([self.budget] if self.budget is not None else []) + list(self.budgets)


class KeySpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    org: str
    value_env: str | None = None
    # Filled in by the applying client from value_env; never written in files.
    value: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["llm"])
    models: list[str] = Field(default_factory=list)
    limits: KeyLimitsSpec = Field(default_factory=KeyLimitsSpec)
    revoked: bool = False
    enabled: bool = True
    expires_at: datetime | None = None
    # Client networks allowed to use the key (CIDR, IPv4 or IPv6); empty = any.
    allowed_ips: list[str] = Field(default_factory=list)
    shadow: list[KeyShadowRule] = Field(default_factory=list)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            if scope not in KEY_SCOPES:
                raise ValueError(f"unknown scope {scope!r} (use {', '.join(KEY_SCOPES)})")
        return value

    @field_validator("expires_at")
    @classmethod
    def _expires_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)

    @field_validator("allowed_ips")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"not an IP network: {cidr!r} (use CIDR such as 10.0.0.0/8)") from None
        return value


class ConfigDocument(_Strict):
    organizations: list[OrganizationSpec] = Field(default_factory=list)
    providers: list[ProviderSpec] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    prices: list[PriceSpec] = Field(default_factory=list)
    keys: list[KeySpec] = Field(default_factory=list)

    def reference_issues(
        self,
        *,
        known_orgs: set[str] = frozenset(),  # type: ignore[assignment]
        known_providers: set[str] = frozenset(),  # type: ignore[assignment]
        known_models: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> list[ConfigIssue]:
        """Dangling references and duplicates, given what already exists in the store."""
        issues: list[ConfigIssue] = []
        orgs = known_orgs | {o.name for o in self.organizations}
        providers = known_providers | {p.slug for p in self.providers}
        models = known_models | {m.name for m in self.models}
        for section, attr in (
            ("organizations", "name"),
            ("providers", "slug"),
            ("models", "name"),
        ):
            seen: set[str] = set()
            for i, item in enumerate(getattr(self, section)):
                value = getattr(item, attr)
                if value in seen:
                    issues.append(ConfigIssue(f"{section}[{i}].{attr}", f"duplicate {attr} {value!r}"))
                seen.add(value)
        seen_keys: set[tuple[str, str]] = set()
        for i, key in enumerate(self.keys):
            if (key.org, key.name) in seen_keys:
                issues.append(
                    ConfigIssue(f"keys[{i}].name", f"duplicate key {key.name!r} in org {key.org!r}")
                )
            seen_keys.add((key.org, key.name))
        seen_prices: set[tuple[str, str, datetime | None]] = set()
        for i, price in enumerate(self.prices):
            slot = (price.model, price.unit, price.effective_from)
            if slot in seen_prices:
                when = f" from {price.effective_from.isoformat()}" if price.effective_from else ""
                issues.append(
                    ConfigIssue(f"prices[{i}]", f"duplicate price for {price.model!r} {price.unit}{when}")
                )
            seen_prices.add(slot)
        for i, provider in enumerate(self.providers):
            if provider.api_format != "mock" and not provider.base_url:
                issues.append(ConfigIssue(f"providers[{i}].base_url", "required for this api_format"))
            if provider.api_key and provider.api_key_env:
                issues.append(ConfigIssue(f"providers[{i}]", "give api_key or api_key_env, not both"))
        for i, model in enumerate(self.models):
            for j, target in enumerate(model.targets):
                if target.provider not in providers:
                    issues.append(
                        ConfigIssue(
                            f"models[{i}].targets[{j}].provider", f"unknown provider {target.provider!r}"
                        )
                    )
        for i, org in enumerate(self.organizations):
            for j, slug in enumerate(org.policy.providers):
                if slug not in providers:
                    issues.append(
                        ConfigIssue(f"organizations[{i}].policy.providers[{j}]", f"unknown provider {slug!r}")
                    )
        for i, price in enumerate(self.prices):
            # A public model's price bills callers; `<provider>/<upstream>` is what a
            # provider charges for one target (lowest_cost routing, fallback billing).
            if price.model not in models and price_subject_provider(price.model, providers) is None:
                issues.append(
                    ConfigIssue(
                        f"prices[{i}].model",
                        f"unknown model {price.model!r} (name a public model, or "
                        "<provider>/<upstream model> of a known provider for a target price)",
                    )
                )
        for i, org in enumerate(self.organizations):
            issues += _budget_issues(f"organizations[{i}].policy.limits", org.policy.limits.budgets)
        for i, key in enumerate(self.keys):
            if key.org not in orgs:
                issues.append(ConfigIssue(f"keys[{i}].org", f"unknown organization {key.org!r}"))
            for j, name in enumerate(key.models):
                if name not in models:
                    issues.append(ConfigIssue(f"keys[{i}].models[{j}]", f"unknown model {name!r}"))
            issues += _budget_issues(f"keys[{i}].limits", key.limits.all_budgets())
            if key.value is not None and not key.value.startswith("gk_"):
                issues.append(ConfigIssue(f"keys[{i}].value_env", "key values must start with 'gk_'"))
            if key.value is not None and len(key.value) < 35:
                issues.append(
                    ConfigIssue(f"keys[{i}].value_env", "key values need at least 32 characters after 'gk_'")
                )
        return issues


def _budget_issues(path: str, budgets: list[BudgetSpec]) -> list[ConfigIssue]:
    """Budgets are counted per (period, currency): two of them would share one counter."""
    issues = []
    seen: set[tuple[str, str]] = set()
    for budget in budgets:
        slot = (budget.period, budget.currency)
        if slot in seen:
            issues.append(
                ConfigIssue(path, f"two {budget.period} budgets in {budget.currency}; give each period once")
            )
        seen.add(slot)
    return issues


def policy_document(policy: OrgPolicySpec) -> dict[str, Any]:
    """How a policy is stored: only what differs from the defaults, as JSON values, so
    that a stored policy compares equal to the document that produced it."""
    return policy.model_dump(mode="json", exclude_defaults=True)


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def parse_config(data: Any, *, file: str | None = None) -> ConfigDocument:
    """Validate a parsed document; raise ConfigError listing every problem found."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the document must be a mapping", file)])
    try:
        doc = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            issues.append(ConfigIssue(_loc_to_path(tuple(err["loc"])), message, file))
        raise ConfigError(issues) from None
    return doc


def load_config_file(
    path: str | Path, *, environ: dict[str, str] | None = None, check_references: bool = True
) -> ConfigDocument:
    """Read and validate a YAML file, resolving `value_env` from `environ`.

    `check_references=False` leaves dangling-reference checks to the caller, for a file
    that is merged onto another document (`switchyard up --config` onto the defaults)."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read file: {exc.strerror}", name)]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"invalid YAML: {exc}", name)]) from None
    doc = parse_config(data, file=name)
    doc = resolve_env(doc, environ or {}, file=name)
    issues = doc.reference_issues() if check_references else []
    for issue in issues:
        issue.file = name
    if issues:
        raise ConfigError(issues)
    return doc


def resolve_env(doc: ConfigDocument, environ: dict[str, str], *, file: str | None = None) -> ConfigDocument:
    """Fill key values from `value_env`. A named variable that is unset is an error:
    applying would otherwise silently mint a different key than the one expected."""
    issues: list[ConfigIssue] = []
    keys = []
    for i, key in enumerate(doc.keys):
        if key.value_env:
            value = environ.get(key.value_env)
            if not value:
                issues.append(
                    ConfigIssue(
                        f"keys[{i}].value_env", f"environment variable {key.value_env} is not set", file
                    )
                )
                keys.append(key)
                continue
            key = key.model_copy(update={"value": value})
        keys.append(key)
    if issues:
        raise ConfigError(issues)
    return doc.model_copy(update={"keys": keys})
