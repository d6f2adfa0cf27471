"""Dependencies of the FastAPI routes, declared once."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from switchyard_common.errors import SwitchyardError

from .admission.scopes import check_client_address
from .call_handler import not_ready
from .index import IndexHolder, KeyRecord, SnapshotIndex
from .metrics import Metrics

__all__ = ["CallerKey", "CurrentIndex", "DataPlaneMetrics", "Holder"]


def _holder(request: Request) -> IndexHolder:
    holder: IndexHolder = request.app.state.holder
    return holder


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def _current_index(holder: Annotated[IndexHolder, Depends(_holder)]) -> SnapshotIndex:
    index = holder.current
    if index is None:
        raise not_ready()
    return index


def _caller_key(
    request: Request,
    index: Annotated[SnapshotIndex, Depends(_current_index)],
    metrics: Annotated[Metrics, Depends(_metrics)],
) -> KeyRecord:
    raw = request.headers.get("authorization")
    api_key = request.headers.get("x-api-key")
    try:
        key = index.authenticate(
            raw.encode("latin-1") if raw is not None else None,
            time.time(),
            api_key.encode("latin-1") if api_key is not None else None,
        )
    except SwitchyardError:
        metrics.unauthenticated.inc()
        raise
    if key.networks:  # the key's client allow-list holds on the cold routes too
        check_client_address(key, request.client.host if request.client else None)
    return key


Holder = Annotated[IndexHolder, Depends(_holder)]
DataPlaneMetrics = Annotated[Metrics, Depends(_metrics)]
CurrentIndex = Annotated[SnapshotIndex, Depends(_current_index)]
CallerKey = Annotated[KeyRecord, Depends(_caller_key)]
