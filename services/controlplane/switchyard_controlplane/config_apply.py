"""Apply a config document to the store: validate, plan (config_plan), write everything
in ONE transaction with one version bump, or nothing at all."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from switchyard_common.config_schema import ConfigDocument, KeySpec, ProviderSpec, policy_document
from switchyard_common.errors import ConfigError, ConfigIssue
from switchyard_common.secrets import (
    SecretBox,
    SecretDecryptError,
    generate_api_key,
    hash_api_key,
    key_display_prefix,
)

from . import repo
from .config_plan import (
    Change,
    CurrentState,
    KeyState,
    ModelState,
    PriceState,
    ProviderState,
    normalize_limits,
    plan_changes,
    price_name,
)
from .db.models import ApiKey, Model, Organization, Price, Provider
from .price_check import UnpricedModel
from .repo.models import target_tuple
from .settings import ControlPlaneSettings

__all__ = [
    "ApplyResult",
    "CreatedKey",
    "apply_document",
    "apply_in_session",
    "check_document",
    "load_current_state",
]


@dataclass(frozen=True)
class CreatedKey:
    org: str
    name: str
    key: str

    def as_dict(self) -> dict[str, str]:
        return {"org": self.org, "name": self.name, "key": self.key}


@dataclass(frozen=True)
class ApplyResult:
    changed: bool
    changes: list[Change]
    created_keys: list[CreatedKey] = field(default_factory=list)
    version: int = 0
    dry_run: bool = False
    # Models that would be billed at 0 once the document is applied (price-table check).
    warnings: list[UnpricedModel] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "dry_run": self.dry_run,
            "changes": [c.as_dict() for c in self.changes],
            "created_keys": [k.as_dict() for k in self.created_keys],
            "version": self.version,
            "warnings": [w.as_dict() for w in self.warnings],
        }


def _decrypt(box: SecretBox, ciphertext: str | None) -> str | None:
    if not ciphertext:
        return None
    try:
        return box.decrypt(ciphertext)
    except SecretDecryptError:
        # Encrypted with another SWITCHYARD_SECRET_KEY: plan a rewrite rather than fail.
        return None


def load_current_state(session: Session, box: SecretBox) -> CurrentState:
    providers = {
        p.slug: ProviderState(
            api_format=p.api_format,
            base_url=p.base_url,
            api_path=p.api_path,
            api_key=_decrypt(box, p.api_key_encrypted),
            has_api_key=bool(p.api_key_encrypted),
            api_key_env=p.api_key_env,
            auth_header=p.auth_header or "",
            headers=dict(p.headers or {}),
            timeout_seconds=p.timeout_seconds,
            connect_timeout_seconds=p.connect_timeout_seconds,
            models=tuple(p.models or ()),
            enabled=p.enabled,
        )
        for p in session.scalars(select(Provider))
    }
    models = {
        m.name: ModelState(
            capability=m.capability,
            targets=tuple(target_tuple(t) for t in m.targets),
            routing=m.routing,
            limits=dict(m.limits or {}),
            shadow=tuple(m.shadow or ()),
            max_output_tokens=m.max_output_tokens,
        )
        for m in session.scalars(select(Model))
    }
    prices = {
        (p.model, p.unit, p.effective_from_ms): PriceState(per_million=p.per_million, currency=p.currency)
        for p in session.scalars(select(Price))
    }
    keys = {
        (k.org.name, k.name): KeyState(
            key_hash=k.key_hash,
            scopes=tuple(k.scopes or ()),
            models=tuple(k.models or ()),
            limits=dict(k.limits or {}),
            revoked=k.revoked_at is not None,
            enabled=k.enabled,
            expires_at=k.expires_at,
            allowed_ips=tuple(k.allowed_ips or ()),
            shadow=tuple(k.shadow or ()),
        )
        for k in session.scalars(select(ApiKey))
    }
    orgs = {o.name: dict(o.policy or {}) for o in session.scalars(select(Organization))}
    return CurrentState(organizations=orgs, providers=providers, models=models, prices=prices, keys=keys)


def check_document(session: Session, doc: ConfigDocument) -> None:
    """Raise ConfigError with every dangling reference or inconsistency, given the store."""
    issues = doc.reference_issues(
        known_orgs=set(session.scalars(select(Organization.name))),
        known_providers=set(session.scalars(select(Provider.slug))),
        known_models=set(session.scalars(select(Model.name))),
    )
    for i, key in enumerate(doc.keys):
        if key.value_env and key.value is None:
            # Only the client can read its environment; minting a random key here would
            # silently differ from the value the operator expects.
            issues.append(
                ConfigIssue(
                    f"keys[{i}].value_env", f"{key.value_env} was not resolved to a value by the client"
                )
            )
    if issues:
        raise ConfigError(issues)


def _provider_values(spec: ProviderSpec, box: SecretBox, fields: tuple[str, ...] | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "api_format": spec.api_format,
        "base_url": spec.base_url,
        "api_path": spec.api_path,
        "auth_header": spec.auth_header,
        "headers": dict(spec.headers),
        "timeout_seconds": spec.timeout_seconds,
        "connect_timeout_seconds": spec.connect_timeout_seconds,
        "models": list(spec.models),
        "enabled": spec.enabled,
    }
    # fields is None on create; on update the credential is only rewritten when it
    # differs, because Fernet ciphertexts differ on every encryption.
    credential_changed = fields is None or "api_key" in fields or "api_key_env" in fields
    if credential_changed:
        if spec.api_key:
            values.update(api_key_encrypted=box.encrypt(spec.api_key), api_key_env=None)
        elif spec.api_key_env:
            values.update(api_key_encrypted=None, api_key_env=spec.api_key_env)
    return values


def _write_key(session: Session, spec: KeySpec, change: Change) -> CreatedKey | None:
    org = repo.organizations.require_organization(session, name=spec.org)
    limits = normalize_limits(spec.limits)
    if change.action == "create":
        value = spec.value or generate_api_key()
        key = repo.keys.create_key(
            session,
            org=org,
            name=spec.name,
            key_hash=hash_api_key(value),
            prefix=key_display_prefix(value),
            scopes=spec.scopes,
            models=spec.models,
            limits=limits,
            expires_at=spec.expires_at,
            enabled=spec.enabled,
            allowed_ips=spec.allowed_ips,
            shadow=spec.shadow,
        )
        if spec.revoked:
            repo.keys.revoke_key(session, key=key)
        return None if spec.value else CreatedKey(org=spec.org, name=spec.name, key=value)
    existing = repo.keys.get_key_by_name(session, org_id=org.id, name=spec.name)
    assert existing is not None  # planned as an update, so it exists in this transaction
    new_hash = hash_api_key(spec.value) if spec.value and "value" in change.fields else None
    repo.keys.update_key(
        session,
        key=existing,
        scopes=spec.scopes,
        models=spec.models,
        limits=limits,
        key_hash=new_hash,
        prefix=key_display_prefix(spec.value) if new_hash and spec.value else None,
        expires_at=spec.expires_at,
        clear_expiry=spec.expires_at is None,
        enabled=spec.enabled,
        allowed_ips=spec.allowed_ips,
        shadow=spec.shadow,
    )
    if "revoked" in change.fields:
        repo.keys.revoke_key(session, key=existing)
    return None


def apply_in_session(
    session: Session, box: SecretBox, doc: ConfigDocument, *, dry_run: bool = False
) -> tuple[list[Change], list[CreatedKey]]:
    """Validate, plan and (unless dry_run) write, without committing."""
    check_document(session, doc)
    changes = plan_changes(load_current_state(session, box), doc)
    if dry_run:
        return changes, []
    by_key = {(c.kind, c.name): c for c in changes}
    for org in doc.organizations:
        change = by_key[("organization", org.name)]
        if change.action == "create":
            repo.organizations.create_organization(session, name=org.name, policy=policy_document(org.policy))
        elif change.action == "update":
            existing = repo.organizations.require_organization(session, name=org.name)
            repo.organizations.update_organization(session, org=existing, policy=policy_document(org.policy))
    for provider in doc.providers:
        change = by_key[("provider", provider.slug)]
        if change.action == "create":
            repo.providers.create_provider(
                session, slug=provider.slug, values=_provider_values(provider, box, None)
            )
        elif change.action == "update":
            existing_p = repo.providers.require_provider(session, slug=provider.slug)
            values = _provider_values(provider, box, change.fields)
            repo.providers.update_provider(session, provider=existing_p, values=values)
    for model in doc.models:
        change = by_key[("model", model.name)]
        if change.action == "create":
            repo.models.create_model(session, spec=model)
        elif change.action == "update":
            existing_m = repo.models.require_model(session, name=model.name)
            repo.models.set_model(session, model=existing_m, spec=model)
    for price in doc.prices:
        change = by_key[("price", price_name(price.model, price.unit, price.effective_from))]
        if change.action == "create":
            repo.prices.create_price(
                session,
                model=price.model,
                unit=price.unit,
                per_million=price.per_million,
                currency=price.currency,
                effective_from=price.effective_from,
            )
        elif change.action == "update":
            existing_pr = repo.prices.require_price(
                session, model=price.model, unit=price.unit, effective_from=price.effective_from
            )
            repo.prices.update_price(
                session, price=existing_pr, per_million=price.per_million, currency=price.currency
            )
    created: list[CreatedKey] = []
    for key in doc.keys:
        change = by_key[("key", f"{key.org}/{key.name}")]
        if change.action != "unchanged":
            made = _write_key(session, key, change)
            if made is not None:
                created.append(made)
    return changes, created


def apply_document(
    engine: Engine, settings: ControlPlaneSettings, doc: ConfigDocument, dry_run: bool = False
) -> ApplyResult:
    """Apply `doc` in one transaction. Raises ConfigError (nothing written) on invalid input."""
    box = SecretBox(settings.secret_key)
    with repo.make_sessionmaker(engine)() as session:
        # A dry run writes too and then rolls back: it meets the same conflicts a real
        # apply would, and the price check sees the state the document would produce.
        changes, created = apply_in_session(session, box, doc)
        changed = any(c.action != "unchanged" for c in changes)
        warnings = repo.prices.check_price_table(session, now_ms=int(time.time() * 1000))
        if dry_run or not changed:
            created = [] if dry_run else created
            session.rollback()
            version = repo.read_config_version(session).version
        else:
            session.commit()
            version = session.info.get(repo.NEW_VERSION_KEY) or repo.read_config_version(session).version
    return ApplyResult(
        changed=changed,
        changes=changes,
        created_keys=created,
        version=version,
        dry_run=dry_run,
        warnings=warnings,
    )
