"""Gateway API keys (`gk_...`). The value is returned once, at creation; only its
SHA-256 is stored and listings show a short prefix."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from switchyard_common.config_schema import KeySpec
from switchyard_common.secrets import generate_api_key, hash_api_key, key_display_prefix

from ... import repo
from ...config_plan import normalize_limits
from ...deps import AdminDep, SessionDep, StoreDep
from ..schemas import KeyCreate, KeyCreated, KeyOut, KeyUpdate, ListOf
from ..validation import check_entity

router = APIRouter(prefix="/keys", tags=["keys"])


@router.post("", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, store: StoreDep, _admin: AdminDep) -> KeyCreated:
    spec: KeySpec = check_entity(store.session, "keys", body.model_dump(mode="json", exclude_none=True))
    value = spec.value or generate_api_key()
    key = repo.keys.create_key(
        store.session,
        org=repo.organizations.require_organization(store.session, name=spec.org),
        name=spec.name,
        key_hash=hash_api_key(value),
        prefix=key_display_prefix(value),
        scopes=spec.scopes,
        models=spec.models,
        limits=normalize_limits(spec.limits),
        expires_at=spec.expires_at,
        enabled=spec.enabled,
        allowed_ips=spec.allowed_ips,
        shadow=spec.shadow,
    )
    store.commit()
    return KeyCreated(**KeyOut.fields_of(key), key=value)


@router.get("", response_model=ListOf[KeyOut])
def list_keys(session: SessionDep, _admin: AdminDep, org: str | None = None) -> ListOf[KeyOut]:
    return ListOf(data=[KeyOut.of(k) for k in repo.keys.list_keys(session, org=org)])


@router.get("/{key_id}", response_model=KeyOut)
def get_key(key_id: str, session: SessionDep, _admin: AdminDep) -> KeyOut:
    return KeyOut.of(repo.keys.require_key(session, key_id=key_id))


@router.patch("/{key_id}", response_model=KeyOut)
def update_key(key_id: str, body: KeyUpdate, store: StoreDep, _admin: AdminDep) -> KeyOut:
    key = repo.keys.require_key(store.session, key_id=key_id)
    current = KeyOut.of(key)
    merged = current.model_dump(
        mode="json", include={"name", "org", "scopes", "models", "limits", "enabled", "allowed_ips", "shadow"}
    )
    merged["expires_at"] = current.model_dump(mode="json")["expires_at"]
    # Only what the body names changes; `expires_at: null` removes the expiry.
    merged.update(body.model_dump(mode="json", include=body.model_fields_set, exclude_none=True))
    if "expires_at" in body.model_fields_set:
        merged["expires_at"] = body.model_dump(mode="json")["expires_at"]
    spec: KeySpec = check_entity(store.session, "keys", {k: v for k, v in merged.items() if v is not None})
    repo.keys.update_key(
        store.session,
        key=key,
        scopes=spec.scopes,
        models=spec.models,
        limits=normalize_limits(spec.limits),
        expires_at=spec.expires_at,
        clear_expiry=spec.expires_at is None,
        enabled=spec.enabled,
        allowed_ips=spec.allowed_ips,
        shadow=spec.shadow,
    )
    store.commit()
    return KeyOut.of(key)


@router.post("/{key_id}/revoke", response_model=KeyOut)
def revoke_key(key_id: str, store: StoreDep, _admin: AdminDep) -> KeyOut:
    key = repo.keys.require_key(store.session, key_id=key_id)
    repo.keys.revoke_key(store.session, key=key)
    store.commit()
    return KeyOut.of(key)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_key(key_id: str, store: StoreDep, _admin: AdminDep) -> Response:
    key = repo.keys.require_key(store.session, key_id=key_id)
    repo.keys.delete_key(store.session, key=key)
    store.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
