"""Export the stored configuration as a config document (the `apply` input shape).

Secrets are redacted: provider credentials appear only as `api_key_env` references,
keys never carry values. Re-applying an export is a no-op.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session
from switchyard_common.config_schema import (
    ConfigDocument,
    KeySpec,
    ModelSpec,
    OrganizationSpec,
    PriceSpec,
    ProviderSpec,
    RateLimitsSpec,
    TargetSpec,
)

from . import repo
from .config_values import datetime_from_ms, load_key_limits, load_policy

__all__ = ["export_document", "export_dict"]


def export_document(session: Session) -> ConfigDocument:
    organizations = [
        OrganizationSpec(name=o.name, policy=load_policy(o.policy))
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
            enabled=p.enabled,
        )
        for p in repo.providers.list_providers(session)
    ]
    models = [
        ModelSpec(
            name=m.name,
            capability=m.capability,  # type: ignore[arg-type]
            targets=[
                TargetSpec(
                    provider=t.provider.slug,
                    model=t.upstream_model,
                    priority=t.priority,
                    weight=t.weight,
                    limits=RateLimitsSpec.model_validate(t.limits or {}),
                )
                for t in m.targets
            ],
            routing=m.routing,  # type: ignore[arg-type]
            limits=RateLimitsSpec.model_validate(m.limits or {}),
            shadow=list(m.shadow or []),  # type: ignore[arg-type]
            max_output_tokens=m.max_output_tokens,
        )
        for m in repo.models.list_models(session)
    ]
    prices = [
        PriceSpec(
            model=p.model,
            unit=p.unit,  # type: ignore[arg-type]
            per_million=p.per_million,
            currency=p.currency,
            effective_from=datetime_from_ms(p.effective_from_ms),
        )
        for p in repo.prices.list_prices(session)
    ]
    keys = [
        KeySpec(
            name=k.name,
            org=k.org.name,
            scopes=list(k.scopes or []),
            models=list(k.models or []),
            limits=load_key_limits(k.limits),
            revoked=k.revoked_at is not None,
            enabled=k.enabled,
            expires_at=k.expires_at,
            allowed_ips=list(k.allowed_ips or []),
            shadow=list(k.shadow or []),  # type: ignore[arg-type]
        )
        for k in repo.keys.list_keys(session)
    ]
    return ConfigDocument(
        organizations=organizations, providers=providers, models=models, prices=prices, keys=keys
    )


def _short(spec: BaseModel) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_defaults=True, exclude_none=True)


def export_dict(session: Session) -> dict[str, Any]:
    """JSON/YAML-ready export, short: settings at their defaults and secret fields are
    left out (re-applying it restores the defaults, so nothing is lost). A few defaults
    stay visible because a reader needs them: a model's capability, a key's scopes and
    a price's currency."""
    document = export_document(session)
    data: dict[str, Any] = {
        "organizations": [_short(o) for o in document.organizations],
        "providers": [_short(p) for p in document.providers],
        "models": [],
        "prices": [],
        "keys": [],
    }
    for model in document.models:
        data["models"].append({"name": model.name, "capability": model.capability} | _short(model))
    for price in document.prices:
        data["prices"].append(_short(price) | {"currency": price.currency})
    for key in document.keys:
        out = {"name": key.name, "org": key.org, "scopes": list(key.scopes)} | _short(key)
        for secret in ("value", "value_env"):
            out.pop(secret, None)
        limits = out.get("limits", {})
        if len(limits.get("budgets", [])) == 1:
            # The one-budget shorthand of the config docs.
            limits["budget"] = limits.pop("budgets")[0]
        data["keys"].append(out)
    for provider in data["providers"]:
        provider.pop("api_key", None)
    return data
