"""Admin users and admin API tokens. These rows are not part of the snapshot.
Keyword-only; callers own the transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from switchyard_common.errors import NotFound

from ..auth import (
    generate_token,
    hash_password,
    hash_token,
    password_needs_rehash,
    token_display_prefix,
    verify_password,
)
from ..db.models import AdminToken, AdminUser
from ..db.types import utcnow

__all__ = [
    "authenticate_user",
    "create_admin_token",
    "delete_admin_token",
    "ensure_admin_user",
    "find_admin_token",
    "get_user_by_email",
    "list_admin_tokens",
    "purge_expired_tokens",
]


def get_user_by_email(session: Session, *, email: str) -> AdminUser | None:
    return session.scalars(select(AdminUser).where(AdminUser.email == email.strip().lower())).one_or_none()


def ensure_admin_user(session: Session, *, email: str, password: str) -> AdminUser:
    """Create the bootstrap admin, or re-hash its password when it changed (or the
    hash parameters are outdated); otherwise leave the row untouched."""
    user = get_user_by_email(session, email=email)
    if user is None:
        user = AdminUser(email=email.strip().lower(), password_hash=hash_password(password))
        session.add(user)
    elif not verify_password(user.password_hash, password) or password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return user


def authenticate_user(session: Session, *, email: str, password: str) -> AdminUser | None:
    user = get_user_by_email(session, email=email)
    if user is None:
        # Hash anyway so response time does not reveal whether the email exists.
        hash_password(password)
        return None
    return user if verify_password(user.password_hash, password) else None


def create_admin_token(
    session: Session,
    *,
    kind: str,
    name: str,
    prefix: str,
    user_id: str | None = None,
    ttl: timedelta | None = None,
) -> tuple[AdminToken, str]:
    """Returns the row and the plaintext token, which is not stored and cannot be recovered."""
    token = generate_token(prefix)
    row = AdminToken(
        kind=kind,
        name=name,
        token_hash=hash_token(token),
        prefix=token_display_prefix(token),
        user_id=user_id,
        expires_at=utcnow() + ttl if ttl is not None else None,
    )
    session.add(row)
    session.flush()
    return row, token


def find_admin_token(session: Session, *, token: str, now: datetime | None = None) -> AdminToken | None:
    """The unexpired token row for a presented bearer token, if any."""
    row = session.scalars(select(AdminToken).where(AdminToken.token_hash == hash_token(token))).one_or_none()
    if row is None:
        return None
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return None
    return row


def list_admin_tokens(session: Session, *, kind: str | None = None) -> list[AdminToken]:
    query = select(AdminToken).order_by(AdminToken.created_at)
    if kind is not None:
        query = query.where(AdminToken.kind == kind)
    return list(session.scalars(query))


def delete_admin_token(session: Session, *, token_id: str, kind: str | None = None) -> None:
    row = session.get(AdminToken, token_id)
    if row is None or (kind is not None and row.kind != kind):
        raise NotFound(f"admin token {token_id!r} not found", code="admin_token_not_found")
    session.delete(row)
    session.flush()


def purge_expired_tokens(session: Session, *, now: datetime | None = None) -> int:
    result = session.execute(
        delete(AdminToken).where(
            AdminToken.expires_at.is_not(None), AdminToken.expires_at <= (now or utcnow())
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
