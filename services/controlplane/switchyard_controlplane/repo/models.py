"""Public model (and route target) queries. Keyword-only; callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session
from switchyard_common.config_schema import TargetSpec
from switchyard_common.errors import NotFound

from ..db.models import Model, ModelTarget, Provider
from ..errors import Conflict

__all__ = [
    "create_model",
    "delete_model",
    "get_model",
    "list_models",
    "require_model",
    "set_model",
]


def list_models(session: Session) -> list[Model]:
    return list(session.scalars(select(Model).order_by(Model.name)))


def get_model(session: Session, *, name: str) -> Model | None:
    return session.scalars(select(Model).where(Model.name == name)).one_or_none()


def require_model(session: Session, *, name: str) -> Model:
    model = get_model(session, name=name)
    if model is None:
        raise NotFound(f"model {name!r} not found", code="model_not_found")
    return model


def _build_targets(session: Session, targets: Sequence[TargetSpec]) -> list[ModelTarget]:
    slugs = {t.provider for t in targets}
    providers = {p.slug: p for p in session.scalars(select(Provider).where(Provider.slug.in_(slugs)))}
    built = []
    for position, target in enumerate(targets):
        provider = providers.get(target.provider)
        if provider is None:
            # Callers validate references first; this guards direct use.
            raise NotFound(f"provider {target.provider!r} not found", code="provider_not_found")
        built.append(
            ModelTarget(
                provider=provider,
                provider_id=provider.id,
                upstream_model=target.model,
                priority=target.priority,
                weight=target.weight,
                position=position,
            )
        )
    return built


def create_model(session: Session, *, name: str, capability: str, targets: Sequence[TargetSpec]) -> Model:
    if get_model(session, name=name) is not None:
        raise Conflict(f"model {name!r} already exists", code="model_exists")
    model = Model(name=name, capability=capability, targets=_build_targets(session, targets))
    session.add(model)
    session.flush()
    return model


def set_model(session: Session, *, model: Model, capability: str, targets: Sequence[TargetSpec]) -> Model:
    """Replace the capability and the whole target list."""
    if model.capability != capability:
        model.capability = capability
    current = [(t.provider.slug, t.upstream_model, t.priority, t.weight) for t in model.targets]
    wanted = [(t.provider, t.model, t.priority, t.weight) for t in targets]
    if current != wanted:
        # Flush the removals before adding replacements so positions never collide.
        model.targets.clear()
        session.flush()
        model.targets.extend(_build_targets(session, targets))
    session.flush()
    return model


def delete_model(session: Session, *, model: Model) -> None:
    """Deletes the model with its targets and prices."""
    session.delete(model)
    session.flush()
