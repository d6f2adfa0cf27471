"""Prices per (public model, unit)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from switchyard_common.config_schema import PriceSpec

from ... import repo
from ...deps import AdminDep, SessionDep, StoreDep
from ..schemas import ListOf, PriceOut, PriceUpdate
from ..validation import check_entity

router = APIRouter(prefix="/prices", tags=["prices"])


@router.post("", response_model=PriceOut, status_code=status.HTTP_201_CREATED)
def create_price(body: PriceSpec, store: StoreDep, _admin: AdminDep) -> PriceOut:
    spec: PriceSpec = check_entity(store.session, "prices", body.model_dump())
    price = repo.prices.create_price(
        store.session, model=spec.model, unit=spec.unit, per_million=spec.per_million, currency=spec.currency
    )
    store.commit()
    return PriceOut.of(price)


@router.get("", response_model=ListOf[PriceOut])
def list_prices(session: SessionDep, _admin: AdminDep, model: str | None = None) -> ListOf[PriceOut]:
    return ListOf(data=[PriceOut.of(p) for p in repo.prices.list_prices(session, model=model)])


@router.get("/{model}/{unit}", response_model=PriceOut)
def get_price(model: str, unit: str, session: SessionDep, _admin: AdminDep) -> PriceOut:
    return PriceOut.of(repo.prices.require_price(session, model=model, unit=unit))


@router.put("/{model}/{unit}", response_model=PriceOut)
def update_price(model: str, unit: str, body: PriceUpdate, store: StoreDep, _admin: AdminDep) -> PriceOut:
    price = repo.prices.require_price(store.session, model=model, unit=unit)
    repo.prices.update_price(
        store.session, price=price, per_million=body.per_million, currency=body.currency or price.currency
    )
    store.commit()
    return PriceOut.of(price)


@router.delete("/{model}/{unit}", status_code=status.HTTP_204_NO_CONTENT)
def delete_price(model: str, unit: str, store: StoreDep, _admin: AdminDep) -> Response:
    price = repo.prices.require_price(store.session, model=model, unit=unit)
    repo.prices.delete_price(store.session, price=price)
    store.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
