"""FastAPI dependencies of the admin API, declared once as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from switchyard_common.errors import AuthenticationError
from switchyard_common.secrets import SecretBox

from . import repo
from .errors import Forbidden
from .repo import ConfigSession
from .settings import ControlPlaneSettings
from .snapshot_hub import SnapshotHub

__all__ = [
    "AdminDep",
    "AppContext",
    "ContextDep",
    "Principal",
    "SessionAdminDep",
    "SessionDep",
    "Store",
    "StoreDep",
]


@dataclass(frozen=True)
class AppContext:
    """Everything routes need, built once by create_app (no module globals)."""

    settings: ControlPlaneSettings
    engine: Engine
    sessions: sessionmaker[ConfigSession]
    hub: SnapshotHub
    box: SecretBox


@dataclass(frozen=True)
class Principal:
    token_id: str
    kind: str  # session | ci
    name: str
    user_id: str | None


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[ConfigSession]:
    with context.sessions() as session:
        yield session


SessionDep = Annotated[ConfigSession, Depends(get_session)]


@dataclass(frozen=True)
class Store:
    """The request's session plus commit-and-publish: a committed config change wakes
    this replica's snapshot hub at once instead of at its next poll."""

    session: ConfigSession
    hub: SnapshotHub

    def commit(self) -> None:
        self.session.commit()
        self.hub.poke()


def get_store(session: SessionDep, context: ContextDep) -> Store:
    return Store(session=session, hub=context.hub)


StoreDep = Annotated[Store, Depends(get_store)]

_bearer = HTTPBearer(auto_error=False, description="Login session token (sys_...) or CI token (sya_...)")


def require_admin(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("missing bearer token", code="missing_token")
    row = repo.admin.find_admin_token(session, token=credentials.credentials)
    if row is None:
        raise AuthenticationError("invalid or expired token", code="invalid_token")
    return Principal(token_id=row.id, kind=row.kind, name=row.name, user_id=row.user_id)


AdminDep = Annotated[Principal, Depends(require_admin)]


def require_session_admin(principal: AdminDep) -> Principal:
    """Minting and revoking CI tokens needs an interactive login, so a leaked CI token
    cannot create more tokens for itself."""
    if principal.kind != "session":
        raise Forbidden("admin tokens can only be managed from a login session", code="session_required")
    return principal


SessionAdminDep = Annotated[Principal, Depends(require_session_admin)]
