"""Export the stored configuration as a config document (the `apply` input shape).

Secrets are redacted: provider credentials appear only as `api_key_env` references,
keys never carry values. Re-applying an export is a no-op.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from switchyard_common.config_schema import (
    ConfigDocument,
    KeyLimitsSpec,
    KeySpec,
    ModelSpec,
    OrganizationSpec,
    PriceSpec,
    ProviderSpec,
    TargetSpec,
)

from . import repo

__all__ = ["export_document", "export_dict"]


def export_document(session: Session) -> ConfigDocument:
    organizations = [
        OrganizationSpec(name=o.name, policy=dict(o.policy or {}))
        for o in repo.organizations.list_organizations(session)
    ]
    providers = [
        ProviderSpec(
            slug=p.slug,
            api_format=p.api_format,  # type: ignore[arg-type]
            base_url=p.base_url,
            api_path=p.api_path,
            api_key_env=p.api_key_env,
            auth_header=p.auth_header or "",
            headers=dict(p.headers or {}),
            timeout_seconds=p.timeout_seconds,
            connect_timeout_seconds=p.connect_timeout_seconds,
            models=list(p.models or []),
        )
        for p in repo.providers.list_providers(session)
    ]
    models = [
        ModelSpec(
            name=m.name,
            capability=m.capability,  # type: ignore[arg-type]
            targets=[
                TargetSpec(
                    provider=t.provider.slug, model=t.upstream_model, priority=t.priority, weight=t.weight
                )
                for t in m.targets
            ],
        )
        for m in repo.models.list_models(session)
    ]
    prices = [
        PriceSpec(model=p.model.name, unit=p.unit, per_million=p.per_million, currency=p.currency)  # type: ignore[arg-type]
        for p in repo.prices.list_prices(session)
    ]
    keys = [
        KeySpec(
            name=k.name,
            org=k.org.name,
            scopes=list(k.scopes or []),
            models=list(k.models or []),
            limits=KeyLimitsSpec.model_validate(k.limits or {}),
            revoked=k.revoked_at is not None,
        )
        for k in repo.keys.list_keys(session)
    ]
    return ConfigDocument(
        organizations=organizations, providers=providers, models=models, prices=prices, keys=keys
    )


def export_dict(session: Session) -> dict[str, Any]:
    """JSON/YAML-ready export: unset optionals and secret fields are left out."""
    data = export_document(session).model_dump(mode="json", exclude_none=True)
    for provider in data["providers"]:
        provider.pop("api_key", None)
        # The common case is the api_format's own header; only a choice is worth showing.
        if not provider.get("auth_header"):
            provider.pop("auth_header", None)
    for key in data["keys"]:
        key.pop("value", None)
        key.pop("value_env", None)
        if not key.get("revoked"):
            key.pop("revoked", None)
    return data
