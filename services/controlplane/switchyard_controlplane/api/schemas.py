"""Request and response bodies of the admin API.

Create bodies reuse the config-as-code specs (switchyard_common.config_schema) so REST
and `apply` validate identically. Credentials and key values are write-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from switchyard_common.config_schema import KeyLimitsSpec, TargetSpec

from ..db.models import AdminToken, ApiKey, Model, Organization, Price, Provider

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
    policy: dict[str, str]


class OrganizationOut(BaseModel):
    id: str
    name: str
    policy: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, row: Organization) -> OrganizationOut:
        return cls(id=row.id, name=row.name, policy=dict(row.policy or {}), created_at=row.created_at)


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
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ModelUpdate(_Body):
    capability: Literal["llm", "embedding", "image", "asr", "tts", "ocr", "vision-segment"] | None = None
    targets: list[TargetSpec] | None = Field(default=None, min_length=1)


class ModelOut(BaseModel):
    id: str
    name: str
    capability: str
    targets: list[TargetSpec]

    @classmethod
    def of(cls, row: Model) -> ModelOut:
        targets = [
            TargetSpec(provider=t.provider.slug, model=t.upstream_model, priority=t.priority, weight=t.weight)
            for t in row.targets
        ]
        return cls(id=row.id, name=row.name, capability=row.capability, targets=targets)


class PriceUpdate(_Body):
    per_million: float = Field(ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class PriceOut(BaseModel):
    model: str
    unit: str
    per_million: float
    currency: str

    @classmethod
    def of(cls, row: Price) -> PriceOut:
        return cls(model=row.model.name, unit=row.unit, per_million=row.per_million, currency=row.currency)


class KeyCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    org: str
    scopes: list[str] = Field(default_factory=lambda: ["llm"])
    models: list[str] = Field(default_factory=list)
    limits: KeyLimitsSpec = Field(default_factory=KeyLimitsSpec)
    # A fixed `gk_...` value (migrations, tests); generated when omitted.
    value: str | None = None
    expires_at: datetime | None = None


class KeyUpdate(_Body):
    scopes: list[str] | None = None
    models: list[str] | None = None
    limits: KeyLimitsSpec | None = None
    expires_at: datetime | None = None


class KeyOut(BaseModel):
    id: str
    name: str
    org: str
    org_id: str
    prefix: str
    scopes: list[str]
    models: list[str]
    limits: dict[str, Any]
    revoked: bool
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
            "limits": dict(row.limits or {}),
            "revoked": row.revoked_at is not None,
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
