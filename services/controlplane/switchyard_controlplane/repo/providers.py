"""Provider queries. Keyword-only; callers own the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from switchyard_common.errors import NotFound

from ..config_values import new_breaker_epoch
from ..db.models import Model, ModelTarget, Provider
from ..errors import Conflict

__all__ = [
    "EPOCH_FIELDS",
    "PROVIDER_FIELDS",
    "create_provider",
    "delete_provider",
    "get_provider",
    "list_providers",
    "require_provider",
    "update_provider",
]

# Columns a create/update may set (the credential arrives already encrypted).
PROVIDER_FIELDS = frozenset(
    {
        "api_format",
        "base_url",
        "api_path",
        "api_key_encrypted",
        "api_key_env",
        "auth_header",
        "headers",
        "timeout_seconds",
        "connect_timeout_seconds",
        "models",
        "enabled",
    }
)


# What decides whether calls to the provider can succeed: a change to any of them draws a
# new breaker epoch, which starts the provider's circuit breakers afresh.
EPOCH_FIELDS = frozenset(
    {"api_format", "base_url", "api_path", "api_key_encrypted", "api_key_env", "auth_header", "enabled"}
)


def list_providers(session: Session) -> list[Provider]:
    return list(session.scalars(select(Provider).order_by(Provider.slug)))


def get_provider(session: Session, *, slug: str) -> Provider | None:
    return session.scalars(select(Provider).where(Provider.slug == slug)).one_or_none()


def require_provider(session: Session, *, slug: str) -> Provider:
    provider = get_provider(session, slug=slug)
    if provider is None:
        raise NotFound(f"provider {slug!r} not found", code="provider_not_found")
    return provider


def _check_fields(values: Mapping[str, Any]) -> None:
    unknown = set(values) - PROVIDER_FIELDS
    if unknown:
        raise ValueError(f"not provider fields: {sorted(unknown)}")


def create_provider(session: Session, *, slug: str, values: Mapping[str, Any]) -> Provider:
    _check_fields(values)
    if get_provider(session, slug=slug) is not None:
        raise Conflict(f"provider {slug!r} already exists", code="provider_exists")
    provider = Provider(slug=slug, **values)
    session.add(provider)
    session.flush()
    return provider


def update_provider(session: Session, *, provider: Provider, values: Mapping[str, Any]) -> Provider:
    _check_fields(values)
    reset_breakers = False
    for field, value in values.items():
        if getattr(provider, field) != value:
            setattr(provider, field, value)
            reset_breakers = reset_breakers or field in EPOCH_FIELDS
    if reset_breakers:
        provider.breaker_epoch = new_breaker_epoch()
    session.flush()
    return provider


def delete_provider(session: Session, *, provider: Provider) -> None:
    users = list(
        session.scalars(
            select(Model.name)
            .join(ModelTarget, ModelTarget.model_id == Model.id)
            .where(ModelTarget.provider_id == provider.id)
        ).unique()
    )
    if users:
        raise Conflict(
            f"provider {provider.slug!r} is a target of models {sorted(users)}; change those first",
            code="provider_in_use",
        )
    session.delete(provider)
    session.flush()
