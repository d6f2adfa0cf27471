"""Long-lived CI tokens (`sya_...`): created from a login session, shown once, stored hashed."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status

from ... import repo
from ...auth import CI_TOKEN_PREFIX
from ...deps import SessionAdminDep, SessionDep
from ..schemas import AdminTokenCreate, AdminTokenCreated, AdminTokenOut, ListOf

router = APIRouter(prefix="/admin-tokens", tags=["admin tokens"])


@router.post("", response_model=AdminTokenCreated, status_code=status.HTTP_201_CREATED)
def create_admin_token(
    body: AdminTokenCreate, session: SessionDep, principal: SessionAdminDep
) -> AdminTokenCreated:
    ttl = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = repo.admin.create_admin_token(
        session, kind="ci", name=body.name, prefix=CI_TOKEN_PREFIX, user_id=principal.user_id, ttl=ttl
    )
    session.commit()
    return AdminTokenCreated(**AdminTokenOut.of(row).model_dump(), token=token)


@router.get("", response_model=ListOf[AdminTokenOut])
def list_admin_tokens(session: SessionDep, _principal: SessionAdminDep) -> ListOf[AdminTokenOut]:
    return ListOf(data=[AdminTokenOut.of(row) for row in repo.admin.list_admin_tokens(session, kind="ci")])


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_admin_token(token_id: str, session: SessionDep, _principal: SessionAdminDep) -> Response:
    repo.admin.delete_admin_token(session, token_id=token_id, kind="ci")
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
