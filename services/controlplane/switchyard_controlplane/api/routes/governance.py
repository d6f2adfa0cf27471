"""Live governance state the data planes keep: circuit breakers and budget use.

Read from Redis in split mode, from the in-process data plane in embedded mode; 503
(`state_unavailable`) when neither is there or Redis does not answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from switchyard_common.config_schema import BudgetSpec

from ... import repo
from ...config_values import load_key_limits, load_policy
from ...deps import AdminDep, AppContext, ContextDep
from ...governance_state import breaker_states, budget_usage

router = APIRouter(tags=["governance"])


def _current_epochs(context: AppContext) -> dict[str, str]:
    with context.sessions() as session:
        return {p.slug: p.breaker_epoch for p in repo.providers.list_providers(session)}


@router.get("/breakers")
async def list_breakers(context: ContextDep, _admin: AdminDep, provider: str | None = None) -> dict[str, Any]:
    """Circuit breakers per (provider, upstream model) as the data planes share them.
    `state` is what a call meets now (an open breaker past its cooldown is `half_open`);
    `open_until` is Unix seconds; `current` is false for breakers of an earlier provider
    configuration (changed URL, credential or enabled flag), which no call uses any more."""
    states, source = await breaker_states(context.settings)
    epochs = await asyncio.to_thread(_current_epochs, context)
    now = time.time()
    data = [
        state.as_dict(now) | {"current": epochs.get(state.provider) == state.epoch}
        for state in states
        if provider is None or state.provider == provider
    ]
    return {"source": source, "data": data}


def _key_budgets(context: AppContext, key_id: str) -> tuple[dict[str, Any], list[BudgetSpec], bool]:
    with context.sessions() as session:
        key = repo.keys.require_key(session, key_id=key_id)
        info = {"key_id": key.id, "key": key.name, "org": key.org.name}
        budgets = load_key_limits(key.limits).all_budgets()
        return info, budgets, "budget" in (key.shadow or [])


def _org_budgets(context: AppContext, name: str) -> tuple[dict[str, Any], list[BudgetSpec], bool]:
    with context.sessions() as session:
        org = repo.organizations.require_organization(session, name=name)
        policy = load_policy(org.policy)
        return {"org": org.name, "org_id": org.id}, list(policy.limits.budgets), "budget" in policy.shadow


@router.get("/keys/{key_id}/budget")
async def key_budget(key_id: str, context: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    """Use of each of the key's budgets in its current UTC period: spent (settled calls),
    reserved (worst case of calls in flight) and remaining. `shadow`: the budget only
    records would-be refusals."""
    info, budgets, shadow = await asyncio.to_thread(_key_budgets, context, key_id)
    usage, source = await budget_usage(context.settings, "key", info["key_id"], budgets, time.time())
    return info | {"source": source, "shadow": shadow, "budgets": [u.as_dict() for u in usage]}


@router.get("/organizations/{name}/budget")
async def organization_budget(name: str, context: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    """As /keys/{id}/budget, for the organization's own budgets (all its keys together)."""
    info, budgets, shadow = await asyncio.to_thread(_org_budgets, context, name)
    usage, source = await budget_usage(context.settings, "org", info["org_id"], budgets, time.time())
    return info | {"source": source, "shadow": shadow, "budgets": [u.as_dict() for u in usage]}
