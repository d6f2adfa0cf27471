"""Config as code: apply (idempotent upsert, one transaction) and export (secrets redacted)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from switchyard_common.config_schema import parse_config

from ...config_apply import apply_document
from ...config_export import export_dict
from ...deps import AdminDep, ContextDep, SessionDep
from ..schemas import ApplyRequest

router = APIRouter(prefix="/config", tags=["config"])


@router.post("/apply")
def apply_config(body: ApplyRequest, context: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    """Returns `{changed, dry_run, changes: [{kind, name, action, fields?}], created_keys: [{org, name, key}],
    version}`. Invalid documents answer 422 with `error.issues: [{path, message}]`."""
    doc = parse_config(body.document)
    result = apply_document(context.engine, context.settings, doc, dry_run=body.dry_run)
    if result.changed and not body.dry_run:
        context.hub.poke()
    return result.as_dict()


@router.get("/export")
def export_config(session: SessionDep, _admin: AdminDep) -> dict[str, Any]:
    return export_dict(session)
