"""The price schedule: entries per (model, unit, effective_from).

`model` is a public model name (what callers are billed) or `<provider>/<upstream model>`
(a target price: what the provider charges), so it may contain slashes; the unit is always
the last path segment. `effective_from` (query parameter, ISO 8601) picks a dated entry of
the schedule; without it the undated entry ("always") is meant.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

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
        store.session,
        model=spec.model,
        unit=spec.unit,
        per_million=spec.per_million,
        currency=spec.currency,
        effective_from=spec.effective_from,
    )
    store.commit()
    return PriceOut.of(price)


@router.get("", response_model=ListOf[PriceOut])
def list_prices(session: SessionDep, _admin: AdminDep, model: str | None = None) -> ListOf[PriceOut]:
    return ListOf(data=[PriceOut.of(p) for p in repo.prices.list_prices(session, model=model)])


@router.get("/check")
def check_prices(session: SessionDep, _admin: AdminDep) -> dict[str, Any]:
    """Models whose calls would be billed at 0 now: no price in effect for a unit their
    capability is metered in, on the model itself nor on some of its targets.
    `{"ok": bool, "unpriced": [{model, capability, missing_units, unpriced_targets, message}]}`."""
    found = repo.prices.check_price_table(session, now_ms=int(time.time() * 1000))
    return {"ok": not found, "unpriced": [item.as_dict() for item in found]}


@router.get("/{model:path}/{unit}", response_model=PriceOut)
def get_price(
    model: str, unit: str, session: SessionDep, _admin: AdminDep, effective_from: datetime | None = None
) -> PriceOut:
    return PriceOut.of(
        repo.prices.require_price(session, model=model, unit=unit, effective_from=effective_from)
    )


@router.put("/{model:path}/{unit}", response_model=PriceOut)
def update_price(
    model: str,
    unit: str,
    body: PriceUpdate,
    store: StoreDep,
    _admin: AdminDep,
    effective_from: datetime | None = None,
) -> PriceOut:
    price = repo.prices.require_price(store.session, model=model, unit=unit, effective_from=effective_from)
    repo.prices.update_price(
        store.session, price=price, per_million=body.per_million, currency=body.currency or price.currency
    )
    store.commit()
    return PriceOut.of(price)


@router.delete("/{model:path}/{unit}", status_code=status.HTTP_204_NO_CONTENT)
def delete_price(
    model: str, unit: str, store: StoreDep, _admin: AdminDep, effective_from: datetime | None = None
) -> Response:
    price = repo.prices.require_price(store.session, model=model, unit=unit, effective_from=effective_from)
    repo.prices.delete_price(store.session, price=price)
    store.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
