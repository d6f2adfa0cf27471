"""Price schedule queries, keyed by (model, unit, effective_from). `model` is a public model
name or a target `<provider-slug>/<upstream-model>`; effective_from None (stored as 0) means
"always". Keyword-only; callers own the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from switchyard_common.errors import NotFound

from ..config_values import ms_from_datetime
from ..db.models import Model, Price
from ..errors import Conflict
from ..price_check import PricedEntry, UnpricedModel, check_prices
from .session import mark_config_changed

__all__ = [
    "check_price_table",
    "create_price",
    "delete_price",
    "delete_prices_of",
    "get_price",
    "list_prices",
    "require_price",
    "update_price",
]


def list_prices(session: Session, *, model: str | None = None) -> list[Price]:
    query = select(Price).order_by(Price.model, Price.unit, Price.effective_from_ms)
    if model is not None:
        query = query.where(Price.model == model)
    return list(session.scalars(query))


def get_price(
    session: Session, *, model: str, unit: str, effective_from: datetime | None = None
) -> Price | None:
    query = select(Price).where(
        Price.model == model, Price.unit == unit, Price.effective_from_ms == ms_from_datetime(effective_from)
    )
    return session.scalars(query).one_or_none()


def _describe(model: str, unit: str, effective_from: datetime | None) -> str:
    when = f" from {effective_from.isoformat()}" if effective_from is not None else ""
    return f"{unit} price for {model!r}{when}"


def require_price(
    session: Session, *, model: str, unit: str, effective_from: datetime | None = None
) -> Price:
    price = get_price(session, model=model, unit=unit, effective_from=effective_from)
    if price is None:
        raise NotFound(f"no {_describe(model, unit, effective_from)}", code="price_not_found")
    return price


def create_price(
    session: Session,
    *,
    model: str,
    unit: str,
    per_million: float,
    currency: str,
    effective_from: datetime | None = None,
) -> Price:
    """References (known model or provider) are the caller's to validate first."""
    if get_price(session, model=model, unit=unit, effective_from=effective_from) is not None:
        raise Conflict(f"there already is a {_describe(model, unit, effective_from)}", code="price_exists")
    price = Price(
        model=model,
        unit=unit,
        per_million=per_million,
        currency=currency,
        effective_from_ms=ms_from_datetime(effective_from),
    )
    session.add(price)
    session.flush()
    return price


def update_price(session: Session, *, price: Price, per_million: float, currency: str) -> Price:
    if price.per_million != per_million:
        price.per_million = per_million
    if price.currency != currency:
        price.currency = currency
    session.flush()
    return price


def delete_price(session: Session, *, price: Price) -> None:
    session.delete(price)
    session.flush()


def delete_prices_of(session: Session, *, model: str) -> None:
    """Every schedule entry of a public model (it is being deleted)."""
    result = session.execute(delete(Price).where(Price.model == model))
    if result.rowcount:  # type: ignore[attr-defined]
        # A bulk DELETE bypasses the ORM's change tracking that bumps the version.
        mark_config_changed(session)


def check_price_table(session: Session, *, now_ms: int) -> list[UnpricedModel]:
    """Models whose calls would be billed at 0 now (see price_check)."""
    models = [
        (m.name, m.capability, [f"{t.provider.slug}/{t.upstream_model}" for t in m.targets])
        for m in session.scalars(select(Model).order_by(Model.name))
    ]
    entries = [
        PricedEntry(model, unit, effective_from_ms)
        for model, unit, effective_from_ms in session.execute(
            select(Price.model, Price.unit, Price.effective_from_ms)
        )
    ]
    return check_prices(models, entries, now_ms=now_ms)
