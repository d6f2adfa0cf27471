"""Price queries, keyed by (public model name, unit). Keyword-only; callers own the transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from switchyard_common.errors import NotFound

from ..db.models import Model, Price
from ..errors import Conflict
from .models import require_model

__all__ = ["create_price", "delete_price", "get_price", "list_prices", "require_price", "update_price"]


def list_prices(session: Session, *, model: str | None = None) -> list[Price]:
    query = select(Price).join(Model, Price.model_id == Model.id).order_by(Model.name, Price.unit)
    if model is not None:
        query = query.where(Model.name == model)
    return list(session.scalars(query))


def get_price(session: Session, *, model: str, unit: str) -> Price | None:
    query = (
        select(Price).join(Model, Price.model_id == Model.id).where(Model.name == model, Price.unit == unit)
    )
    return session.scalars(query).one_or_none()


def require_price(session: Session, *, model: str, unit: str) -> Price:
    price = get_price(session, model=model, unit=unit)
    if price is None:
        raise NotFound(f"no {unit} price for model {model!r}", code="price_not_found")
    return price


def create_price(session: Session, *, model: str, unit: str, per_million: float, currency: str) -> Price:
    owner = require_model(session, name=model)
    if get_price(session, model=model, unit=unit) is not None:
        raise Conflict(f"model {model!r} already has a {unit} price", code="price_exists")
    price = Price(model=owner, model_id=owner.id, unit=unit, per_million=per_million, currency=currency)
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
