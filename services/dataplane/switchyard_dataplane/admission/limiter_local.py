"""The in-memory limiter: the same rules and answers as the Redis one (limits_lua.py),
for one process. The normal path of an embedded data plane (no Redis configured), and
the fallback of a fail-open organization while Redis is unreachable (then approximate:
each replica counts only what it admits itself).

Not thread-safe by design: it runs on the event loop and never awaits mid-update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from switchyard_common.budget_state import BudgetLike, BudgetUsage, Scope, budget_key, usage_of

from .plan import Plan, Settlement, Verdict

__all__ = ["LocalLimiter"]

# Stale counters are swept every this many admissions (bounded memory).
_SWEEP_EVERY = 4096


@dataclass(slots=True)
class _Budget:
    spent: int = 0
    reserved: int = 0
    # call id -> (amount, lease expiry ms)
    open: dict[str, tuple[int, int]] = field(default_factory=dict)
    expires_ms: int = 0  # 0 = never ("total")


class LocalLimiter:
    def __init__(
        self,
        *,
        bucket_ms: int,
        nbuckets: int,
        lease_ms: int,
        prefix: str = "sy:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_ms = bucket_ms
        self.nbuckets = nbuckets
        self.lease_ms = lease_ms
        self.prefix = prefix
        self._clock = clock
        self._rates: dict[str, dict[int, int]] = {}
        self._slots: dict[str, dict[str, int]] = {}
        self._budgets: dict[str, _Budget] = {}
        self._admissions = 0

    def _now_ms(self, plan: Plan) -> int:
        return plan.now_ms or int(self._clock() * 1000)

    async def admit(self, plan: Plan) -> Verdict:
        return self.admit_now(plan)

    def admit_now(self, plan: Plan) -> Verdict:
        now = self._now_ms(plan)
        bms, nb = self.bucket_ms, self.nbuckets
        cur = now // bms
        oldest = cur - nb + 1
        refused, retry = 0, 0
        shadow: list[int] = []
        used: list[int] = []
        resets: list[int] = []
        budget_used: list[int] = []

        def fail(index: int, enforce: bool, wait: int) -> None:
            nonlocal refused, retry
            if enforce:
                if refused == 0:
                    refused, retry = index, wait
            else:
                shadow.append(index)

        for i, rate in enumerate(plan.rates, 1):
            buckets = self._rates.get(rate.key)
            live: list[tuple[int, int]] = []
            if buckets:
                for b in [b for b in buckets if b < oldest]:
                    del buckets[b]
                live = sorted(buckets.items())
            total = sum(v for _, v in live)
            used.append(total)
            newest = next((b for b, v in reversed(live) if v > 0), None)
            resets.append((newest + nb) * bms - now if newest is not None else 0)
            if total >= rate.limit or total + rate.amount > rate.limit:
                wait = nb * bms
                if rate.amount <= rate.limit:
                    need, freed = total + rate.amount - rate.limit, 0
                    for b, v in live:
                        freed += v
                        if freed >= need:
                            wait = (b + nb) * bms - now
                            break
                else:
                    wait = -1
                fail(i, rate.enforce, wait)

        base = len(plan.rates)
        for i, slot in enumerate(plan.slots, base + 1):
            holders = self._slots.get(slot.key)
            if holders:
                for call in [c for c, expiry in holders.items() if expiry <= now]:
                    del holders[call]
            if len(holders or ()) + 1 > slot.limit:
                fail(i, slot.enforce, 1000)

        base += len(plan.slots)
        for i, charge in enumerate(plan.budgets, base + 1):
            state = self._budgets.get(charge.key)
            committed = 0
            if state is not None:
                for call in [c for c, (_, expiry) in state.open.items() if expiry <= now]:
                    state.reserved -= state.open.pop(call)[0]
                committed = state.spent + state.reserved
            budget_used.append(committed)
            if committed >= charge.limit_nano or committed + charge.reserve_nano > charge.limit_nano:
                fail(i, charge.enforce, charge.period_end * 1000 - now if charge.period_end else -1)

        if refused:
            return Verdict(False, refused, retry, now, cur, shadow, used, resets, budget_used)

        for rate in plan.rates:
            if rate.amount > 0:
                counter = self._rates.setdefault(rate.key, {})
                counter[cur] = counter.get(cur, 0) + rate.amount
        for slot in plan.slots:
            self._slots.setdefault(slot.key, {})[plan.call_id] = now + self.lease_ms
        for charge in plan.budgets:
            state = self._budgets.get(charge.key)
            if state is None:
                expires = (charge.period_end + 86400) * 1000 if charge.period_end else 0
                state = self._budgets[charge.key] = _Budget(expires_ms=expires)
            if charge.reserve_nano > 0:
                state.reserved += charge.reserve_nano
                state.open[plan.call_id] = (charge.reserve_nano, now + self.lease_ms)

        self._admissions += 1
        if self._admissions % _SWEEP_EVERY == 0:
            self._sweep(now)
        return Verdict(True, 0, 0, now, cur, shadow, used, resets, budget_used)

    async def settle(self, plan: Plan, verdict: Verdict, settlement: Settlement) -> None:
        self.settle_now(plan, verdict, settlement)

    def settle_now(self, plan: Plan, verdict: Verdict, settlement: Settlement) -> None:
        for rate, delta in zip(plan.rates, settlement.token_deltas, strict=True):
            counter = self._rates.get(rate.key)
            if delta and counter is not None:
                counter[verdict.bucket] = counter.get(verdict.bucket, 0) + delta
        for slot in plan.slots:
            holders = self._slots.get(slot.key)
            if holders is not None:
                holders.pop(plan.call_id, None)
        for charge, cost in zip(plan.budgets, settlement.costs_nano, strict=True):
            state = self._budgets.get(charge.key)
            if state is None:
                if not cost:
                    continue
                expires = (charge.period_end + 86400) * 1000 if charge.period_end else 0
                state = self._budgets[charge.key] = _Budget(expires_ms=expires)
            opened = state.open.pop(plan.call_id, None)
            if opened is not None:
                state.reserved -= opened[0]
            state.spent += cost

    def _sweep(self, now: int) -> None:
        """Drop counters nothing can read any more: windows long gone, idle slot sets,
        budgets of past periods."""
        oldest = now // self.bucket_ms - self.nbuckets + 1
        for key in [k for k, buckets in self._rates.items() if not buckets or max(buckets) < oldest]:
            del self._rates[key]
        for key in [k for k, holders in self._slots.items() if all(e <= now for e in holders.values())]:
            del self._slots[key]
        for key in [k for k, b in self._budgets.items() if b.expires_ms and b.expires_ms <= now]:
            del self._budgets[key]

    async def read_budget_usage(
        self, scope: Scope, owner_id: str, budgets: list[BudgetLike], now: float
    ) -> list[BudgetUsage]:
        """As switchyard_common.budget_state.read_budget_usage, from memory (embedded
        mode: the control plane reads it through governance_registry.LOCAL_BUDGETS)."""
        result = []
        for budget in budgets:
            key = budget_key(
                self.prefix, scope, owner_id, budget.period or "month", budget.currency or "USD", now
            )
            state = self._budgets.get(key)
            result.append(usage_of(budget, state.spent if state else 0, state.reserved if state else 0, now))
        return result
