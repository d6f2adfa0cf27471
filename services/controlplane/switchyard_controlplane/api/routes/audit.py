"""Audit log queries: list audited calls (filter by org, key, model, status, time) and
fetch one with its bodies; purge expired rows on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from sqlalchemy import Engine
from switchyard_common.audit_store import AuditFilter, get_audit, list_audit
from switchyard_common.db import as_utc
from switchyard_common.errors import InvalidRequest, NotFound

from ... import repo
from ...audit_purge import purge_expired_audit
from ...deps import AdminDep, ContextDep, StoreDep

router = APIRouter(tags=["audit"])

_DEFAULT_WINDOW = timedelta(days=1)


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    if not value:
        return None
    ts, sep, event_id = value.partition("|")
    try:
        if not sep:
            raise ValueError
        return as_utc(datetime.fromisoformat(ts)), event_id
    except ValueError:
        raise InvalidRequest("malformed cursor", code="invalid_cursor", param="cursor") from None


def _list(
    engine: Engine, where: AuditFilter, limit: int, after: tuple[datetime, str] | None
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return list_audit(conn, where, limit=limit, after=after)


@router.get("/audit")
async def audit_list(
    context: ContextDep,
    store: StoreDep,
    _admin: AdminDep,
    org: str | None = None,
    key_id: str | None = None,
    model: str | None = None,
    status: int | None = None,
    errors_only: bool = False,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Audited calls, newest first, without bodies; `next_cursor` pages on."""
    end = as_utc(end) if end is not None else datetime.now(UTC) + timedelta(seconds=1)
    start = as_utc(start) if start is not None else end - _DEFAULT_WINDOW
    if start >= end:
        raise InvalidRequest("start must be before end", code="invalid_range", param="start")
    org_id = repo.organizations.require_organization(store.session, name=org).id if org else None
    where = AuditFilter(
        start=start,
        end=end,
        org_id=org_id,
        key_id=key_id,
        model=model,
        status=status,
        min_status=400 if errors_only else None,
    )
    rows = await asyncio.to_thread(_list, context.engine, where, limit, _cursor(cursor))
    next_cursor = f"{rows[-1]['ts'].isoformat()}|{rows[-1]['id']}" if len(rows) == limit else None
    return {"data": jsonable_encoder(rows), "next_cursor": next_cursor}


def _get(engine: Engine, event_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        return get_audit(conn, event_id)


@router.get("/audit/{event_id}")
async def audit_get(context: ContextDep, _admin: AdminDep, event_id: str) -> dict[str, Any]:
    """One audited call with its (redacted) request and response bodies; streamed answers
    come reassembled into the document a non-streamed call would have returned."""
    row = await asyncio.to_thread(_get, context.engine, event_id)
    if row is None:
        raise NotFound(f"no audit record for call {event_id!r}", code="audit_not_found")
    return jsonable_encoder(row)


@router.post("/audit/purge")
async def audit_purge(context: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    """Apply every organization's retention period now (it also runs periodically)."""
    deleted = await asyncio.to_thread(purge_expired_audit, context.engine)
    return {"deleted": deleted}
