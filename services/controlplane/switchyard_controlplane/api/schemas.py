"""Request and response bodies of the admin API.

Create bodies reuse the config-as-code specs (switchyard_common.config_schema) so REST
and `apply` validate identically. Credentials and key values are write-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from switchyard_common.config_schema import (
    KeyLimitsSpec,
    KeyShadowRule,
    ModelShadowRule,
    OrgPolicySpec,
    RateLimitsSpec,
    RoutingStrategy,
    TargetSpec,
)

from ..config_values import datetime_from_ms, load_policy, normalize_key_limits, normalize_rate_limits
from ..db.models import AdminToken, ApiKey, Model, ModelTarget, Organization, Price, Provider

__all__ = [
    "AdminTokenCreate",
    "AdminTokenCreated",
    "AdminTokenOut",
    "ApplyRequest",
    "KeyCreate",
    "KeyCreated",
    "KeyOut",
    "KeyUpdate",
    "ListOf",
    "LoginRequest",
    "ModelOut",
    "ModelUpdate",
    "OrganizationOut",
    "OrganizationUpdate",
    "PriceOut",
    "PriceUpdate",
    "TargetOut",
    "ProviderOut",
    "ProviderUpdate",
    "TokenResponse",
]

T = TypeVar("T")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListOf(BaseModel, Generic[T]):
    data: list[T]


class LoginRequest(_Body):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class AdminTokenCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    # None: the token never expires (revoke it with DELETE).
    expires_in_days: int | None = Field(default=None, gt=0, le=3650)


class AdminTokenOut(BaseModel):
    id: str
    name: str
    kind: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, row: AdminToken) -> AdminTokenOut:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            prefix=row.prefix,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


class AdminTokenCreated(AdminTokenOut):
    token: str = Field(description="The token value; shown only in this response.")


class OrganizationUpdate(_Body):
    """Replaces the whole policy: fields left out return to their defaults."""

    policy: OrgPolicySpec = Field(default_factory=OrgPolicySpec)


class OrganizationOut(BaseModel):
    id: str
    name: str
    # The whole effective policy, defaults included.
    policy: OrgPolicySpec
    created_at: datetime

    @classmethod
    def of(cls, row: Organization) -> OrganizationOut:
        return cls(
            id=row.id,
            name=row.name,
            policy=load_policy(row.policy),
            created_at=row.created_at,
        )


class ProviderUpdate(_Body):
    """Partial update: only the fields present are changed. `api_key: null` (or
    `api_key_env: null`) removes that credential."""

    api_format: Literal["openai", "anthropic", "gemini", "azure", "mock"] | None = None
    base_url: str | None = None
    api_path: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    # "" resets to the api_format's own header.
    auth_header: str | None = None
    headers: dict[str, str] | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)
    connect_timeout_seconds: float | None = Field(default=None, gt=0)
    models: list[str] | None = None
    enabled: bool | None = None


class ProviderOut(BaseModel):
    id: str
    slug: str
    api_format: str
    base_url: str
    api_path: str
    has_api_key: bool
    api_key_env: str | None
    auth_header: str
    headers: dict[str, str]
    timeout_seconds: float
    connect_timeout_seconds: float
    models: list[str]
    enabled: bool
    # Changes with the URL, credential, auth header or enabled flag; breaker states
    # (GET /breakers) of older epochs no longer apply.
    breaker_epoch: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Provider) -> ProviderOut:
        return cls(
            id=row.id,
            slug=row.slug,
            api_format=row.api_format,
            base_url=row.base_url,
            api_path=row.api_path,
            has_api_key=bool(row.api_key_encrypted),
            api_key_env=row.api_key_env,
            auth_header=row.auth_header or "",
            headers=dict(row.headers or {}),
            timeout_seconds=row.timeout_seconds,
            connect_timeout_seconds=row.connect_timeout_seconds,
            models=list(row.models or []),
            enabled=row.enabled,
            breaker_epoch=row.breaker_epoch,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ModelUpdate(_Body):
    """Partial update: only the fields present are changed. `routing: null` returns the
    model to its organization's strategy; `targets` replaces the whole list."""

    capability: Literal["llm", "embedding", "image", "asr", "tts", "ocr", "vision-segment"] | None = None
    targets: list[TargetSpec] | None = Field(default=None, min_length=1)
    routing: RoutingStrategy | None = None
    limits: RateLimitsSpec | None = None
    shadow: list[ModelShadowRule] | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)


class TargetOut(BaseModel):
    provider: str
    model: str
    priority: int
    weight: int
    # Only the limits that are set (0 and unset mean no limit).
    limits: dict[str, int]

    @classmethod
    def of(cls, row: ModelTarget) -> TargetOut:
        return cls(
            provider=row.provider.slug,
            model=row.upstream_model,
            priority=row.priority,
            weight=row.weight,
            limits=normalize_rate_limits(row.limits),
        )


class ModelOut(BaseModel):
    id: str
    name: str
    capability: str
    targets: list[TargetOut]
    # None: the organization's routing strategy.
    routing: str | None
    limits: dict[str, int]
    shadow: list[str]
    max_output_tokens: int

    @classmethod
    def of(cls, row: Model) -> ModelOut:
        return cls(
            id=row.id,
            name=row.name,
            capability=row.capability,
            targets=[TargetOut.of(t) for t in row.targets],
            routing=row.routing,
            limits=normalize_rate_limits(row.limits),
            shadow=list(row.shadow or []),
            max_output_tokens=row.max_output_tokens,
        )


class PriceUpdate(_Body):
    per_million: float = Field(ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class PriceOut(BaseModel):
    # A public model name, or `<provider>/<upstream model>` for a target price.
    model: str
    unit: str
    per_million: float
    currency: str
    # None: applies always (until a dated entry of the same model and unit takes over).
    effective_from: datetime | None

    @classmethod
    def of(cls, row: Price) -> PriceOut:
        return cls(
            model=row.model,
            unit=row.unit,
            per_million=row.per_million,
            currency=row.currency,
            effective_from=datetime_from_ms(row.effective_from_ms),
        )


class KeyCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    org: str
    scopes: list[str] = Field(default_factory=lambda: ["llm"])
    models: list[str] = Field(default_factory=list)
    limits: KeyLimitsSpec = Field(default_factory=KeyLimitsSpec)
    # A fixed `gk_...` value (migrations, tests); generated when omitted.
    value: str | None = None
    expires_at: datetime | None = None
    enabled: bool = True
    allowed_ips: list[str] = Field(default_factory=list)
    shadow: list[KeyShadowRule] = Field(default_factory=list)


class KeyUpdate(_Body):
    """Partial update: only the fields present are changed; `expires_at: null` removes
    the expiry. `limits` replaces all limits."""

    scopes: list[str] | None = None
    models: list[str] | None = None
    limits: KeyLimitsSpec | None = None
    expires_at: datetime | None = None
    enabled: bool | None = None
    allowed_ips: list[str] | None = None
    shadow: list[KeyShadowRule] | None = None


class KeyOut(BaseModel):
    id: str
    name: str
    org: str
    org_id: str
    prefix: str
    scopes: list[str]
    models: list[str]
    # rpm, tpm, concurrency when set; budgets [{amount, currency, period}].
    limits: dict[str, Any]
    revoked: bool
    enabled: bool
    allowed_ips: list[str]
    shadow: list[str]
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def fields_of(cls, row: ApiKey) -> dict[str, Any]:
        return {
            "id": row.id,
            "name": row.name,
            "org": row.org.name,
            "org_id": row.org_id,
            "prefix": row.prefix,
            "scopes": list(row.scopes or []),
            "models": list(row.models or []),
            "limits": normalize_key_limits(row.limits),
            "revoked": row.revoked_at is not None,
            "enabled": row.enabled,
            "allowed_ips": list(row.allowed_ips or []),
            "shadow": list(row.shadow or []),
            "created_at": row.created_at,
            "revoked_at": row.revoked_at,
            "expires_at": row.expires_at,
        }

    @classmethod
    def of(cls, row: ApiKey) -> KeyOut:
        return cls(**cls.fields_of(row))


class KeyCreated(KeyOut):
    key: str = Field(description="The key value; shown only in this response.")


class ApplyRequest(_Body):
    document: dict[str, Any] = Field(
        description="A config document (the YAML of `switchyard apply`, as JSON)."
    )
    dry_run: bool = False
