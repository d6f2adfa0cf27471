"""Login: email + password -> session bearer token."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from switchyard_common.errors import AuthenticationError

from ... import repo
from ...auth import SESSION_TOKEN_PREFIX
from ...deps import ContextDep, SessionDep
from ..schemas import LoginRequest, TokenResponse

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=TokenResponse)
def login(body: LoginRequest, session: SessionDep, context: ContextDep) -> TokenResponse:
    user = repo.admin.authenticate_user(session, email=body.email, password=body.password)
    if user is None:
        raise AuthenticationError("invalid email or password", code="invalid_credentials")
    ttl = context.settings.session_ttl_seconds
    repo.admin.purge_expired_tokens(session)
    _row, token = repo.admin.create_admin_token(
        session,
        kind="session",
        name=f"login:{user.email}",
        prefix=SESSION_TOKEN_PREFIX,
        user_id=user.id,
        ttl=timedelta(seconds=ttl),
    )
    session.commit()
    return TokenResponse(access_token=token, expires_in=ttl)
