"""Build the `Snapshot` protobuf (the whole contract with the data planes) from the store."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from switchyard_common.config_schema import BudgetSpec, OrgPolicySpec, policy_document
from switchyard_common.proto import controlplane_pb2 as pb

from . import repo
from .config_values import load_key_limits, load_policy, normalize_rate_limits
from .db.models import ApiKey, Model, Organization, Price, Provider

__all__ = ["build_snapshot", "build_snapshot_from_engine"]


def _raw_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _rate_limits(limits: dict[str, Any] | None) -> pb.RateLimits:
    normalized = normalize_rate_limits(limits)
    return pb.RateLimits(rpm=normalized.get("rpm", 0), tpm=normalized.get("tpm", 0))


def _budgets(budgets: Iterable[BudgetSpec]) -> list[pb.Budget]:
    return [pb.Budget(amount=b.amount, currency=b.currency, period=b.period) for b in budgets]


def _policy(spec: OrgPolicySpec) -> pb.OrgPolicy:
    return pb.OrgPolicy(
        routing=spec.routing,
        overflow=spec.overflow,
        audit=spec.audit,
        on_redis_failure=spec.on_redis_failure,
        unpriced=spec.unpriced,
        allowed_providers=list(spec.providers),
        retry=pb.RetryPolicy(
            retry_on=list(spec.retry.on),
            max_attempts=spec.retry.max_attempts,
            deadline_seconds=spec.retry.deadline_seconds,
        ),
        breaker=pb.BreakerPolicy(
            failure_threshold=spec.breaker.failures, cooldown_seconds=spec.breaker.cooldown_seconds
        ),
        limits=pb.RateLimits(rpm=spec.limits.rpm or 0, tpm=spec.limits.tpm or 0),
        budgets=_budgets(spec.limits.budgets),
        shadow=list(spec.shadow),
        audit_retention_days=spec.audit_retention_days,
        audit_max_body_bytes=spec.audit_max_body_bytes,
        audit_redact_paths=list(spec.audit_redact_paths),
    )


def _org(o: Organization) -> pb.Organization:
    # Every field is filled in, defaults included: the data plane enforces `policy` as is.
    spec = load_policy(o.policy)
    return pb.Organization(
        id=o.id,
        name=o.name,
        policy_raw={str(k): _raw_value(v) for k, v in policy_document(spec).items()},
        policy=_policy(spec),
    )


def _provider(p: Provider) -> pb.Provider:
    return pb.Provider(
        id=p.id,
        slug=p.slug,
        api_format=p.api_format,
        base_url=p.base_url,
        api_path=p.api_path,
        # Passed through as stored: the data plane decrypts with the shared secret key.
        api_key_encrypted=p.api_key_encrypted or "",
        api_key_env=p.api_key_env or "",
        auth_header=p.auth_header or "",
        extra_headers=dict(p.headers or {}),
        timeout_seconds=p.timeout_seconds,
        connect_timeout_seconds=p.connect_timeout_seconds,
        models=list(p.models or []),
        disabled=not p.enabled,
        breaker_epoch=p.breaker_epoch,
    )


def _model(m: Model) -> pb.Model:
    return pb.Model(
        id=m.id,
        name=m.name,
        capability=m.capability,
        targets=[
            pb.RouteTarget(
                provider_slug=t.provider.slug,
                upstream_model=t.upstream_model,
                priority=t.priority,
                weight=t.weight,
                limits=_rate_limits(t.limits),
            )
            for t in m.targets
        ],
        routing=m.routing or "",
        limits=_rate_limits(m.limits),
        shadow=list(m.shadow or []),
        max_output_tokens=m.max_output_tokens,
    )


def _key(k: ApiKey) -> pb.ApiKey:
    limits = load_key_limits(k.limits)
    return pb.ApiKey(
        id=k.id,
        name=k.name,
        org_id=k.org_id,
        key_hash=k.key_hash,
        scopes=list(k.scopes or []),
        models=list(k.models or []),
        revoked=k.revoked_at is not None,
        limits=pb.KeyLimits(
            rpm=limits.rpm or 0,
            tpm=limits.tpm or 0,
            concurrency=limits.concurrency or 0,
            budgets=_budgets(limits.all_budgets()),
        ),
        expires_at=int(k.expires_at.timestamp()) if k.expires_at is not None else 0,
        disabled=not k.enabled,
        allowed_cidrs=list(k.allowed_ips or []),
        shadow=list(k.shadow or []),
    )


def _price(p: Price) -> pb.Price:
    return pb.Price(
        model=p.model,
        unit=p.unit,
        per_million=p.per_million,
        currency=p.currency,
        effective_from_ms=p.effective_from_ms,
    )


def build_snapshot(session: Session) -> pb.Snapshot:
    """Snapshot of everything visible to `session`; run it in one repeatable-read
    transaction so the version and the rows belong together."""
    # Version first: without snapshot isolation (SQLite reads) rows can only be newer
    # than the version read, and the newer version is then picked up on the next poll.
    state = repo.read_config_version(session)
    created_at_ms = int(state.updated_at.timestamp() * 1000) if state.updated_at is not None else 0
    return pb.Snapshot(
        version=state.version,
        id=state.snapshot_id,
        created_at_ms=created_at_ms,
        organizations=[_org(o) for o in session.scalars(select(Organization).order_by(Organization.name))],
        providers=[_provider(p) for p in session.scalars(select(Provider).order_by(Provider.slug))],
        models=[_model(m) for m in session.scalars(select(Model).order_by(Model.name))],
        keys=[_key(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.id))],
        prices=[
            _price(p)
            for p in session.scalars(select(Price).order_by(Price.model, Price.unit, Price.effective_from_ms))
        ],
    )


def build_snapshot_from_engine(engine: Engine) -> pb.Snapshot:
    """Blocking; call from a worker thread in async code."""
    bind = engine
    if engine.dialect.name == "postgresql":
        # READ COMMITTED would let rows committed after the version read slip in.
        bind = engine.execution_options(isolation_level="REPEATABLE READ")  # type: ignore[assignment]
    with Session(bind) as session, session.begin():
        return build_snapshot(session)
