"""Control-plane tables.

Rows of `ConfigEntity` subclasses make up the snapshot: committing any change to them
bumps `config_state.version` (see repo.session). Admin users and tokens are not part of
the snapshot and do not bump it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from switchyard_common.db import METADATA
from switchyard_common.ids import uuid7_str

from ..config_values import new_breaker_epoch
from .types import UTCDateTime, utcnow

__all__ = [
    "AdminToken",
    "AdminUser",
    "ApiKey",
    "Base",
    "ConfigEntity",
    "ConfigState",
    "Model",
    "ModelTarget",
    "Organization",
    "Price",
    "Provider",
]


class Base(DeclarativeBase):
    metadata = METADATA


class ConfigEntity:
    """Marker: a row that is part of the routing snapshot."""


def _id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=uuid7_str)


# Server defaults as well as ORM defaults: the columns added by migration 0003 need them
# for existing rows, and the schema then reads the same however a row was inserted.
def _json_object() -> Mapped[dict[str, Any]]:
    return mapped_column(JSON, default=dict, server_default="{}")


def _json_list() -> Mapped[list[str]]:
    return mapped_column(JSON, default=list, server_default="[]")


def _flag_on() -> Mapped[bool]:
    # '1' is true for both SQLite and Postgres.
    return mapped_column(Boolean, default=True, server_default="1")


class Organization(ConfigEntity, Base):
    __tablename__ = "organizations"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # OrgPolicySpec as `policy_document` writes it: only what differs from the defaults.
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Provider(ConfigEntity, Base):
    __tablename__ = "providers"

    id: Mapped[str] = _id_column()
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    api_format: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(String(2000), default="")
    api_path: Mapped[str] = mapped_column(String(500), default="")
    # Fernet ciphertext (SWITCHYARD_SECRET_KEY); never returned by the API.
    api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    api_key_env: Mapped[str | None] = mapped_column(String(200))
    # "" (the api_format's header), "bearer", "none" or a header name; see ProviderSpec.
    auth_header: Mapped[str] = mapped_column(String(100), default="", server_default="")
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=600.0)
    connect_timeout_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A disabled provider stays configured but is never routed to.
    enabled: Mapped[bool] = _flag_on()
    # Redrawn whenever the URL, credential, format, auth header or enabled flag change
    # (repo.providers): data planes key circuit breakers by it, so they start afresh.
    breaker_epoch: Mapped[str] = mapped_column(String(16), default=new_breaker_epoch, server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Model(ConfigEntity, Base):
    """A public model name apps call, routed to one or more provider targets."""

    __tablename__ = "models"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    capability: Mapped[str] = mapped_column(String(32), default="llm")
    # Overrides the organization's routing strategy; None = the organization's.
    routing: Mapped[str | None] = mapped_column(String(32))
    # {"rpm", "tpm"} per organization across its callers of this model (config_values).
    limits: Mapped[dict[str, Any]] = _json_object()
    shadow: Mapped[list[str]] = _json_list()
    # Output tokens a budget reservation assumes when a request sets no max_tokens.
    max_output_tokens: Mapped[int] = mapped_column(Integer, default=4096, server_default="4096")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    targets: Mapped[list[ModelTarget]] = relationship(
        back_populates="model",
        cascade="all, delete-orphan",
        order_by="ModelTarget.position",
        lazy="selectin",
    )


class ModelTarget(ConfigEntity, Base):
    __tablename__ = "model_targets"

    id: Mapped[str] = _id_column()
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    # RESTRICT: a provider still routed to cannot be deleted out from under a model.
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    upstream_model: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    # Keeps the document's order, which is the tie-break between equal priorities.
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The target's own quota {"rpm", "tpm"}; when reached, calls overflow to the next target.
    limits: Mapped[dict[str, Any]] = _json_object()

    model: Mapped[Model] = relationship(back_populates="targets")
    provider: Mapped[Provider] = relationship(lazy="joined")


class Price(ConfigEntity, Base):
    """One entry of the price schedule of a public model (what callers are billed) or of a
    target `<provider-slug>/<upstream-model>` (what the provider charges).

    `model` is a name rather than a foreign key because target prices have no row of
    their own; deleting a model deletes its prices explicitly (repo.models)."""

    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint("model", "unit", "effective_from_ms", name="uq_prices_model_unit_effective_from"),
    )

    id: Mapped[str] = _id_column()
    model: Mapped[str] = mapped_column(String(400))
    unit: Mapped[str] = mapped_column(String(32))
    per_million: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Unix milliseconds from which the price applies; 0 = always. An integer rather than a
    # nullable timestamp so that "always" takes part in the uniqueness constraint.
    effective_from_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ApiKey(ConfigEntity, Base):
    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_api_keys_org_id_name"),)

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200))
    # RESTRICT: an organization with keys cannot be deleted (revoke/delete keys first).
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"), index=True)
    # Hex SHA-256 of the key value; the value itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    # normalize_key_limits form: rpm, tpm, concurrency, budgets [{amount, currency, period}].
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Unlike revocation, disabling is reversible.
    enabled: Mapped[bool] = _flag_on()
    # Client networks (CIDR) allowed to use the key; empty = any.
    allowed_ips: Mapped[list[str]] = _json_list()
    # Rule names that only record would-be refusals (SHADOW_RULES).
    shadow: Mapped[list[str]] = _json_list()

    org: Mapped[Organization] = relationship(lazy="joined")


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[str] = _id_column()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # argon2id encoded hash (argon2-cffi).
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AdminToken(Base):
    """Bearer tokens for the admin API: login sessions and long-lived CI tokens."""

    __tablename__ = "admin_tokens"

    id: Mapped[str] = _id_column()
    kind: Mapped[str] = mapped_column(String(16))  # session | ci
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class ConfigState(Base):
    """Singleton row (id = 1). `version` is the global snapshot version shared by every
    control-plane replica; `snapshot_id` changes with it."""

    __tablename__ = "config_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot_id: Mapped[str] = mapped_column(String(36), default=uuid7_str)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
