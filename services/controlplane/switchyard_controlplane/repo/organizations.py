"""Organization queries. Keyword-only; callers own the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from switchyard_common.errors import NotFound

from ..db.models import ApiKey, Organization
from ..errors import Conflict

__all__ = [
    "create_organization",
    "delete_organization",
    "get_organization",
    "list_organizations",
    "require_organization",
    "update_organization",
]


def list_organizations(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.name)))


def get_organization(session: Session, *, name: str) -> Organization | None:
    return session.scalars(select(Organization).where(Organization.name == name)).one_or_none()


def require_organization(session: Session, *, name: str) -> Organization:
    org = get_organization(session, name=name)
    if org is None:
        raise NotFound(f"organization {name!r} not found", code="organization_not_found")
    return org


def create_organization(session: Session, *, name: str, policy: dict[str, Any]) -> Organization:
    if get_organization(session, name=name) is not None:
        raise Conflict(f"organization {name!r} already exists", code="organization_exists")
    org = Organization(name=name, policy=dict(policy))
    session.add(org)
    session.flush()
    return org


def update_organization(session: Session, *, org: Organization, policy: dict[str, Any]) -> Organization:
    if org.policy != policy:
        org.policy = dict(policy)
        session.flush()
    return org


def delete_organization(session: Session, *, org: Organization) -> None:
    has_keys = session.scalar(select(exists().where(ApiKey.org_id == org.id)))
    if has_keys:
        raise Conflict(
            f"organization {org.name!r} still has API keys; delete them first", code="organization_in_use"
        )
    session.delete(org)
    session.flush()
