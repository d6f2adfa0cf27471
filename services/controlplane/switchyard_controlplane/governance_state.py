"""Reading the data planes' governance state (circuit breakers, budget counters).

Split mode: the data planes keep that state in Redis (`SWITCHYARD_REDIS_URL`, same key
prefix); the control plane reads it with the readers of switchyard_common.breaker_state
and budget_state. Embedded mode (no Redis URL): the data plane runs in this process and
registers its in-memory stores in switchyard_common.governance_registry.

Admin reads are rare, so each one opens its own short-lived client: no connection state
to manage across replicas, and a Redis outage costs a request 503, never a hang.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from switchyard_common import governance_registry
from switchyard_common.breaker_state import BreakerState, read_breakers
from switchyard_common.budget_state import BudgetLike, BudgetUsage, Scope, read_budget_usage
from switchyard_common.errors import ServiceUnavailable

from .settings import ControlPlaneSettings

__all__ = ["Source", "StateUnavailable", "breaker_states", "budget_usage"]

Source = Literal["redis", "local"]

# Long enough for a loaded Redis, short enough that a dead one answers 503 promptly.
_TIMEOUT_SECONDS = 2.0


class StateUnavailable(ServiceUnavailable):
    code = "state_unavailable"


@asynccontextmanager
async def _redis(settings: ControlPlaneSettings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(
        settings.redis_url, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
    )
    try:
        yield client
    finally:
        await client.aclose()


def _no_state(what: str) -> StateUnavailable:
    return StateUnavailable(
        f"{what} is not available: SWITCHYARD_REDIS_URL is not set and no data plane runs in this process"
    )


async def breaker_states(settings: ControlPlaneSettings) -> tuple[list[BreakerState], Source]:
    if settings.redis_url:
        try:
            async with _redis(settings) as client:
                return await read_breakers(client, settings.redis_prefix), "redis"
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"cannot read breaker state from Redis: {exc}") from None
    store = governance_registry.LOCAL_BREAKERS
    if store is None:
        raise _no_state("breaker state")
    return list(store.states()), "local"


async def budget_usage(
    settings: ControlPlaneSettings,
    scope: Scope,
    owner_id: str,
    budgets: Sequence[BudgetLike],
    now: float,
) -> tuple[list[BudgetUsage], Source]:
    """Use of each budget of one key or organization in its current period."""
    if settings.redis_url:
        if not budgets:
            return [], "redis"
        try:
            async with _redis(settings) as client:
                usage = await read_budget_usage(
                    client, settings.redis_prefix, scope, owner_id, list(budgets), now
                )
                return usage, "redis"
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"cannot read budget counters from Redis: {exc}") from None
    store = governance_registry.LOCAL_BUDGETS
    if store is None:
        if not budgets:
            return [], "local"
        raise _no_state("budget use")
    return await store.read_budget_usage(scope, owner_id, list(budgets), now), "local"
