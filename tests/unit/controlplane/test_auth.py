"""Admin authentication: argon2 passwords, bootstrap admin, login and token kinds."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from switchyard_controlplane import auth, repo
from switchyard_controlplane.bootstrap import bootstrap_admin, create_ci_token
from switchyard_controlplane.db import AdminToken, AdminUser
from switchyard_controlplane.settings import ControlPlaneSettings

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD


def test_password_hash_round_trip() -> None:
    hashed = auth.hash_password("s3cret")
    assert hashed.startswith("$argon2id$")
    assert auth.verify_password(hashed, "s3cret")
    assert not auth.verify_password(hashed, "other")
    assert not auth.verify_password("not-a-hash", "s3cret")


def test_bootstrap_creates_then_updates_password(engine: Engine, settings: ControlPlaneSettings) -> None:
    assert bootstrap_admin(engine, settings)
    with Session(engine) as session:
        first = session.scalars(select(AdminUser)).one().password_hash
    assert bootstrap_admin(engine, settings)
    with Session(engine) as session:
        assert session.scalars(select(AdminUser)).one().password_hash == first  # unchanged password
    bootstrap_admin(engine, settings.model_copy(update={"admin_password": "new-password"}))
    with Session(engine) as session:
        user = session.scalars(select(AdminUser)).one()
        assert auth.verify_password(user.password_hash, "new-password")


def test_bootstrap_without_credentials_is_skipped(engine: Engine, settings: ControlPlaneSettings) -> None:
    assert not bootstrap_admin(engine, settings.model_copy(update={"admin_password": ""}))


async def test_login_issues_session_token(client: httpx.AsyncClient, engine: Engine) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 12 * 3600
    assert body["access_token"].startswith("sys_")
    with Session(engine) as session:
        row = session.scalars(select(AdminToken)).one()
        assert row.kind == "session" and row.token_hash == auth.hash_token(body["access_token"])
        assert row.expires_at is not None


async def test_login_rejects_bad_password(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    response = await client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "x"})
    assert response.status_code == 401


async def test_api_requires_a_valid_token(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/organizations")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "missing_token"
    wrong = await client.get("/api/v1/organizations", headers={"Authorization": "Bearer sya_nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_token"


async def test_ci_tokens_lifecycle(admin: httpx.AsyncClient) -> None:
    created = await admin.post("/api/v1/admin-tokens", json={"name": "github-actions"})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("sya_") and created.json()["prefix"] == token[:10]

    listed = (await admin.get("/api/v1/admin-tokens")).json()["data"]
    assert [t["name"] for t in listed] == ["github-actions"]
    assert "token" not in listed[0]

    ci = {"Authorization": f"Bearer {token}"}
    assert (await admin.get("/api/v1/organizations", headers=ci)).status_code == 200
    # A CI token may not mint more tokens.
    forbidden = await admin.post("/api/v1/admin-tokens", json={"name": "x"}, headers=ci)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["type"] == "permission_error"

    assert (await admin.delete(f"/api/v1/admin-tokens/{listed[0]['id']}")).status_code == 204
    assert (await admin.get("/api/v1/organizations", headers=ci)).status_code == 401
    assert (await admin.delete(f"/api/v1/admin-tokens/{listed[0]['id']}")).status_code == 404


async def test_expired_tokens_are_rejected(admin: httpx.AsyncClient, engine: Engine) -> None:
    token = create_ci_token(engine, name="old")
    with repo.make_sessionmaker(engine)() as session:
        row = session.scalars(select(AdminToken).where(AdminToken.name == "old")).one()
        row.expires_at = row.created_at
        session.commit()
    response = await admin.get("/api/v1/organizations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
