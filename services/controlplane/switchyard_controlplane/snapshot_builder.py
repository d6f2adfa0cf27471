"""Build the `Snapshot` protobuf (the whole contract with the data planes) from the store."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from switchyard_common.proto import controlplane_pb2 as pb

from . import repo
from .db.models import ApiKey, Model, Organization, Price, Provider

__all__ = ["build_snapshot", "build_snapshot_from_engine"]


def _org(o: Organization) -> pb.Organization:
    return pb.Organization(id=o.id, name=o.name, policy={str(k): str(v) for k, v in (o.policy or {}).items()})


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
            )
            for t in m.targets
        ],
    )


def _key(k: ApiKey) -> pb.ApiKey:
    limits = k.limits or {}
    budget = limits.get("budget") or {}
    return pb.ApiKey(
        id=k.id,
        name=k.name,
        org_id=k.org_id,
        key_hash=k.key_hash,
        scopes=list(k.scopes or []),
        models=list(k.models or []),
        revoked=k.revoked_at is not None,
        limits=pb.KeyLimits(
            rpm=int(limits.get("rpm") or 0),
            tpm=int(limits.get("tpm") or 0),
            budget_amount=float(budget.get("amount") or 0.0),
            budget_period=str(budget.get("period") or ""),
        ),
        expires_at=int(k.expires_at.timestamp()) if k.expires_at is not None else 0,
    )


def _price(p: Price) -> pb.Price:
    return pb.Price(model=p.model.name, unit=p.unit, per_million=p.per_million, currency=p.currency)


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
        prices=[_price(p) for p in session.scalars(select(Price).order_by(Price.model_id, Price.unit))],
    )


def build_snapshot_from_engine(engine: Engine) -> pb.Snapshot:
    """Blocking; call from a worker thread in async code."""
    bind = engine
    if engine.dialect.name == "postgresql":
        # READ COMMITTED would let rows committed after the version read slip in.
        bind = engine.execution_options(isolation_level="REPEATABLE READ")  # type: ignore[assignment]
    with Session(bind) as session, session.begin():
        return build_snapshot(session)
