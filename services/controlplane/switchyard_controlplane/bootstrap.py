"""Start-up writes: the bootstrap admin, and CI tokens minted without the REST API
(for the CLI's embedded mode)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from . import repo
from .auth import CI_TOKEN_PREFIX
from .settings import ControlPlaneSettings

__all__ = ["bootstrap_admin", "create_ci_token"]

log = logging.getLogger(__name__)


def bootstrap_admin(engine: Engine, settings: ControlPlaneSettings) -> bool:
    """Create SWITCHYARD_ADMIN_EMAIL with SWITCHYARD_ADMIN_PASSWORD, or update its
    password hash if the password changed. False when no admin is configured."""
    if not settings.admin_email or not settings.admin_password:
        log.warning("SWITCHYARD_ADMIN_EMAIL / SWITCHYARD_ADMIN_PASSWORD not set: no bootstrap admin")
        return False
    sessions = repo.make_sessionmaker(engine)
    for attempt in range(2):
        with sessions() as session:
            try:
                repo.admin.ensure_admin_user(
                    session, email=settings.admin_email, password=settings.admin_password
                )
                session.commit()
                break
            except IntegrityError:
                # Another replica starting at the same moment created the row first;
                # the second pass finds it and only checks the password.
                if attempt:
                    raise
    return True


def create_ci_token(engine: Engine, *, name: str, ttl: timedelta | None = None) -> str:
    """A new long-lived admin API token (`sya_...`); the value is returned once."""
    with repo.make_sessionmaker(engine)() as session:
        _row, token = repo.admin.create_admin_token(
            session, kind="ci", name=name, prefix=CI_TOKEN_PREFIX, ttl=ttl
        )
        session.commit()
    return token
