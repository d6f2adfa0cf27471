"""The Redis limiter: one EVALSHA admits a call against all its rules, one settles it.

Keys are prefixed with the data plane's `SWITCHYARD_REDIS_PREFIX`; all replicas that
share a Redis and a prefix share the counters, so together they admit the configured
rate. Every call goes through RedisLink.run: bounded time, RedisDown when unreachable.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript
from switchyard_common.budget_state import reservations_key

from ..redis_link import RedisLink
from .limits_lua import ADMIT, SETTLE
from .plan import Plan, Settlement, Verdict

__all__ = ["RedisLimiter"]


class RedisLimiter:
    def __init__(self, link: RedisLink, *, bucket_ms: int, nbuckets: int, lease_ms: int) -> None:
        self.link = link
        self.bucket_ms = bucket_ms
        self.nbuckets = nbuckets
        self.lease_ms = lease_ms
        # redis-py sends EVALSHA and loads the script only on NOSCRIPT (first use, or
        # after a Redis restart): one round trip per call in the steady state.
        self._admit: AsyncScript = link.client.register_script(ADMIT)
        self._settle: AsyncScript = link.client.register_script(SETTLE)

    async def admit(self, plan: Plan) -> Verdict:
        """Raises RedisDown when Redis is unreachable (the caller applies the policy)."""
        keys: list[str] = [r.key for r in plan.rates]
        keys.extend(s.key for s in plan.slots)
        args: list[Any] = [
            plan.now_ms,
            self.bucket_ms,
            self.nbuckets,
            plan.call_id,
            self.lease_ms,
            len(plan.rates),
            len(plan.slots),
            len(plan.budgets),
        ]
        for r in plan.rates:
            args.extend((r.limit, r.amount, 1 if r.enforce else 0))
        for s in plan.slots:
            args.extend((s.limit, 1 if s.enforce else 0))
        for b in plan.budgets:
            keys.extend((b.key, reservations_key(b.key)))
            args.extend((b.limit_nano, b.reserve_nano, 1 if b.enforce else 0, b.period_end))
        raw = await self.link.run(lambda: self._admit(keys=keys, args=args))
        admitted, refused, retry, now, bucket, shadow, used, resets, budget_used = raw
        return Verdict(
            admitted=bool(admitted),
            refused=int(refused),
            retry_ms=int(retry),
            now_ms=int(now),
            bucket=int(bucket),
            shadow=[int(i) for i in shadow],
            used=[int(u) for u in used],
            resets=[int(r) for r in resets],
            budget_used=[int(u) for u in budget_used],
        )

    async def settle(self, plan: Plan, verdict: Verdict, settlement: Settlement) -> None:
        keys: list[str] = []
        deltas: list[int] = []
        for rate, delta in zip(plan.rates, settlement.token_deltas, strict=True):
            if delta:
                keys.append(rate.key)
                deltas.append(delta)
        keys.extend(s.key for s in plan.slots)
        args: list[Any] = [plan.call_id, verdict.bucket, len(deltas), len(plan.slots), len(plan.budgets)]
        args.extend(deltas)
        for budget, cost in zip(plan.budgets, settlement.costs_nano, strict=True):
            keys.extend((budget.key, reservations_key(budget.key)))
            args.extend((cost, budget.period_end))
        await self.link.run(lambda: self._settle(keys=keys, args=args))
