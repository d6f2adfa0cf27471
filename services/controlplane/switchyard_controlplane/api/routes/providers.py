"""Upstream providers, addressed by slug. The credential is write-only: responses
only say whether one is stored (`has_api_key`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from switchyard_common.config_schema import ProviderSpec

from ... import repo
from ...db.models import Provider
from ...deps import AdminDep, ContextDep, SessionDep, StoreDep
from ..schemas import ListOf, ProviderOut, ProviderUpdate
from ..validation import check_entity

router = APIRouter(prefix="/providers", tags=["providers"])

_PLAIN_FIELDS = (
    "api_format",
    "base_url",
    "api_path",
    "auth_header",
    "headers",
    "timeout_seconds",
    "connect_timeout_seconds",
    "models",
    "enabled",
)


def _current_fields(provider: Provider) -> dict[str, Any]:
    return {field: getattr(provider, field) for field in _PLAIN_FIELDS} | {"slug": provider.slug}


@router.post("", response_model=ProviderOut, status_code=status.HTTP_201_CREATED)
def create_provider(
    body: ProviderSpec, store: StoreDep, context: ContextDep, _admin: AdminDep
) -> ProviderOut:
    spec: ProviderSpec = check_entity(store.session, "providers", body.model_dump(exclude_none=True))
    values: dict[str, Any] = {field: getattr(spec, field) for field in _PLAIN_FIELDS}
    values["api_key_encrypted"] = context.box.encrypt(spec.api_key) if spec.api_key else None
    values["api_key_env"] = spec.api_key_env
    provider = repo.providers.create_provider(store.session, slug=spec.slug, values=values)
    store.commit()
    return ProviderOut.of(provider)


@router.get("", response_model=ListOf[ProviderOut])
def list_providers(session: SessionDep, _admin: AdminDep) -> ListOf[ProviderOut]:
    return ListOf(data=[ProviderOut.of(p) for p in repo.providers.list_providers(session)])


@router.get("/{slug}", response_model=ProviderOut)
def get_provider(slug: str, session: SessionDep, _admin: AdminDep) -> ProviderOut:
    return ProviderOut.of(repo.providers.require_provider(session, slug=slug))


@router.patch("/{slug}", response_model=ProviderOut)
def update_provider(
    slug: str, body: ProviderUpdate, store: StoreDep, context: ContextDep, _admin: AdminDep
) -> ProviderOut:
    provider = repo.providers.require_provider(store.session, slug=slug)
    given = body.model_dump(include=body.model_fields_set)
    merged = _current_fields(provider) | {
        k: v for k, v in given.items() if k in _PLAIN_FIELDS and v is not None
    }
    for credential in ("api_key", "api_key_env"):
        if given.get(credential) is not None:
            merged[credential] = given[credential]
    spec: ProviderSpec = check_entity(store.session, "providers", merged)
    values: dict[str, Any] = {field: getattr(spec, field) for field in _PLAIN_FIELDS}
    # Setting one kind of credential replaces the other; null removes it.
    if "api_key" in given:
        values["api_key_encrypted"] = context.box.encrypt(spec.api_key) if spec.api_key else None
        if spec.api_key and "api_key_env" not in given:
            values["api_key_env"] = None
    if "api_key_env" in given:
        values["api_key_env"] = spec.api_key_env
        if spec.api_key_env and "api_key" not in given:
            values["api_key_encrypted"] = None
    repo.providers.update_provider(store.session, provider=provider, values=values)
    store.commit()
    return ProviderOut.of(provider)


@router.delete("/{slug}", status_code=status.HTTP_204_NO_CONTENT)
def delete_provider(slug: str, store: StoreDep, _admin: AdminDep) -> Response:
    provider = repo.providers.require_provider(store.session, slug=slug)
    repo.providers.delete_provider(store.session, provider=provider)
    store.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
