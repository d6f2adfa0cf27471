"""Audit retention: delete each organization's audit rows older than its
`audit_retention_days`. Runs periodically in every control-plane replica (deleting is
idempotent, so replicas need no coordination) and on demand through the API."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from switchyard_common.audit_store import purge_audit
from switchyard_common.config_schema import OrgPolicySpec

from .db.models import Organization

__all__ = ["AuditPurger", "purge_expired_audit"]

log = logging.getLogger(__name__)


def purge_expired_audit(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """Rows deleted per organization name (organizations with nothing to delete omitted)."""
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        orgs = [(o.id, o.name, o.policy or {}) for o in session.scalars(select(Organization))]
    deleted: dict[str, int] = {}
    for org_id, name, policy in orgs:
        days = OrgPolicySpec.model_validate(policy).audit_retention_days
        with engine.begin() as conn:
            count = purge_audit(conn, org_id, now - timedelta(days=days))
        if count:
            deleted[name] = count
    return deleted


class AuditPurger:
    """Background task running `purge_expired_audit` every `interval` seconds."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(purge_expired_audit, self._engine)
                if deleted:
                    log.info("audit retention: deleted %s", deleted)
            except Exception:  # the database may be away for a while; try again next round
                log.exception("audit retention purge failed")
            await asyncio.sleep(self._interval)
