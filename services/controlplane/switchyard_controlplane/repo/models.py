"""Public model (and route target) queries. Keyword-only; callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session
from switchyard_common.config_schema import ModelSpec, TargetSpec
from switchyard_common.errors import NotFound

from ..config_plan import TargetTuple, spec_target_tuple
from ..config_values import normalize_rate_limits
from ..db.models import Model, ModelTarget, Provider
from ..errors import Conflict
from .prices import delete_prices_of

__all__ = [
    "create_model",
    "delete_model",
    "get_model",
    "list_models",
    "require_model",
    "set_model",
    "target_tuple",
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
                limits=normalize_rate_limits(target.limits),
            )
        )
    return built


def target_tuple(target: ModelTarget) -> TargetTuple:
    """A stored target in the comparable form config_plan uses."""
    return (
        target.provider.slug,
        target.upstream_model,
        target.priority,
        target.weight,
        normalize_rate_limits(target.limits),
    )


def _set_governance(model: Model, spec: ModelSpec) -> None:
    # Assign only on change: an identical write would still count as a config change.
    values = {
        "capability": spec.capability,
        "routing": spec.routing,
        "limits": normalize_rate_limits(spec.limits),
        "shadow": list(spec.shadow),
        "max_output_tokens": spec.max_output_tokens,
    }
    for field, value in values.items():
        if getattr(model, field) != value:
            setattr(model, field, value)


def create_model(session: Session, *, spec: ModelSpec) -> Model:
    if get_model(session, name=spec.name) is not None:
        raise Conflict(f"model {spec.name!r} already exists", code="model_exists")
    model = Model(name=spec.name, targets=_build_targets(session, spec.targets))
    _set_governance(model, spec)
    session.add(model)
    session.flush()
    return model


def set_model(session: Session, *, model: Model, spec: ModelSpec) -> Model:
    """Make the stored model equal `spec` (its name stays): settings and the whole target list."""
    _set_governance(model, spec)
    current = [target_tuple(t) for t in model.targets]
    wanted = [spec_target_tuple(t) for t in spec.targets]
    if current != wanted:
        # Flush the removals before adding replacements so positions never collide.
        model.targets.clear()
        session.flush()
        model.targets.extend(_build_targets(session, spec.targets))
    session.flush()
    return model


def delete_model(session: Session, *, model: Model) -> None:
    """Deletes the model with its targets and prices."""
    delete_prices_of(session, model=model.name)
    session.delete(model)
    session.flush()
