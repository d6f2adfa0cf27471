"""API-key queries. Only SHA-256 hashes are stored. Keyword-only; callers own the transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from switchyard_common.errors import NotFound

from ..db.models import ApiKey, Organization
from ..db.types import utcnow
from ..errors import Conflict

__all__ = [
    "create_key",
    "delete_key",
    "get_key",
    "get_key_by_hash",
    "get_key_by_name",
    "list_keys",
    "require_key",
    "revoke_key",
    "update_key",
]


def list_keys(session: Session, *, org: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).join(Organization, ApiKey.org_id == Organization.id)
    if org is not None:
        query = query.where(Organization.name == org)
    return list(session.scalars(query.order_by(Organization.name, ApiKey.name)))


def get_key(session: Session, *, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def require_key(session: Session, *, key_id: str) -> ApiKey:
    key = get_key(session, key_id=key_id)
    if key is None:
        raise NotFound(f"API key {key_id!r} not found", code="key_not_found")
    return key


def get_key_by_name(session: Session, *, org_id: str, name: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.name == name)).one_or_none()


def get_key_by_hash(session: Session, *, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


def _check_hash_free(session: Session, key_hash: str, own_id: str | None = None) -> None:
    other = get_key_by_hash(session, key_hash=key_hash)
    if other is not None and other.id != own_id:
        # Deliberately vague: naming the other key would leak who holds this value.
        raise Conflict("this key value is already in use", code="key_value_in_use")


def create_key(
    session: Session,
    *,
    org: Organization,
    name: str,
    key_hash: str,
    prefix: str,
    scopes: Sequence[str],
    models: Sequence[str],
    limits: Mapping[str, Any],
    expires_at: datetime | None = None,
    enabled: bool = True,
    allowed_ips: Sequence[str] = (),
    shadow: Sequence[str] = (),
) -> ApiKey:
    if get_key_by_name(session, org_id=org.id, name=name) is not None:
        raise Conflict(f"organization {org.name!r} already has a key named {name!r}", code="key_exists")
    _check_hash_free(session, key_hash)
    key = ApiKey(
        org=org,
        org_id=org.id,
        name=name,
        key_hash=key_hash,
        prefix=prefix,
        scopes=list(scopes),
        models=list(models),
        limits=dict(limits),
        expires_at=expires_at,
        enabled=enabled,
        allowed_ips=list(allowed_ips),
        shadow=list(shadow),
    )
    session.add(key)
    session.flush()
    return key


def update_key(
    session: Session,
    *,
    key: ApiKey,
    scopes: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    limits: Mapping[str, Any] | None = None,
    key_hash: str | None = None,
    prefix: str | None = None,
    expires_at: datetime | None = None,
    clear_expiry: bool = False,
    enabled: bool | None = None,
    allowed_ips: Sequence[str] | None = None,
    shadow: Sequence[str] | None = None,
) -> ApiKey:
    """Set the given fields; None leaves a field as it is (use clear_expiry to drop expires_at)."""
    if enabled is not None and key.enabled != enabled:
        key.enabled = enabled
    if allowed_ips is not None and key.allowed_ips != list(allowed_ips):
        key.allowed_ips = list(allowed_ips)
    if shadow is not None and key.shadow != list(shadow):
        key.shadow = list(shadow)
    if scopes is not None and key.scopes != list(scopes):
        key.scopes = list(scopes)
    if models is not None and key.models != list(models):
        key.models = list(models)
    if limits is not None and key.limits != dict(limits):
        key.limits = dict(limits)
    if key_hash is not None and key.key_hash != key_hash:
        _check_hash_free(session, key_hash, key.id)
        key.key_hash = key_hash
        if prefix is not None:
            key.prefix = prefix
    if clear_expiry:
        if key.expires_at is not None:
            key.expires_at = None
    elif expires_at is not None and key.expires_at != expires_at:
        key.expires_at = expires_at
    session.flush()
    return key


def revoke_key(session: Session, *, key: ApiKey, at: datetime | None = None) -> ApiKey:
    """Idempotent: revoking a revoked key keeps the first revocation time."""
    if key.revoked_at is None:
        key.revoked_at = at or utcnow()
        session.flush()
    return key


def delete_key(session: Session, *, key: ApiKey) -> None:
    session.delete(key)
    session.flush()
