"""The one object the call handlers ask before calling upstream, and tell afterwards.

`admit` runs after the route is known: shadow records of scope rules, the unpriced
policy, then every counted rule of the call (key / org / model rpm and tpm, key
concurrency, key and org budgets) in ONE limiter round trip, all-or-nothing. A key
whose rules count nothing (no limits anywhere on its path) costs no round trip at all.
`finish` settles an admitted call after its answer (real tokens, real cost, slot
release) without delaying it. `target_admit` checks a target's own quota for failover.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from switchyard_common.budget_state import budget_key_of, period_bounds, period_id
from switchyard_common.errors import PermissionDenied, RateLimited, ServiceUnavailable

from ..metrics import Metrics
from ..redis_link import RedisDown, RedisLink
from .budgets import requested_output_tokens, reservation_prices, to_nano, worst_case_cost
from .headers import rate_headers
from .limiter import RedisLimiter
from .limiter_local import LocalLimiter
from .plan import BudgetCharge, ConcurrencySlot, Plan, RateCharge, Settlement, Verdict
from .refusals import refusal_error
from .rules import RateQuota
from .scopes import check_client_address, scope_shadow

if TYPE_CHECKING:
    from ..index import KeyRecord, ModelRoute, SnapshotIndex, Target
    from ..metering import CallUnits
    from ..usage_events import CallRecord

__all__ = ["Governor", "Ticket"]

log = logging.getLogger(__name__)

# Sub-buckets per rate window: the window slides in steps of 1/60 of its length.
BUCKETS_PER_WINDOW = 60
# How long a concurrency slot or budget reservation outlives a replica that crashed
# before releasing it. Longer than any call should take (provider timeouts default to
# 600 s); a call running longer loses its slot early (docs/limits.md).
LEASE_SECONDS = 900.0


@dataclass(slots=True)
class Ticket:
    """An admitted call's charges, kept on the CallRecord until settlement."""

    plan: Plan
    verdict: Verdict
    limiter: RedisLimiter | LocalLimiter
    # Extra admissions for targets with their own quota: (target name, plan, verdict, limiter).
    targets: list[tuple[str, Plan, Verdict, RedisLimiter | LocalLimiter]] = field(default_factory=list)


class Governor:
    def __init__(
        self,
        *,
        link: RedisLink | None = None,
        window_seconds: float = 60.0,
        metrics: Metrics | None = None,
        prefix: str = "sy:",
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.prefix = link.prefix if link is not None else prefix
        self.window_seconds = window_seconds
        bucket_ms = max(1, round(window_seconds * 1000 / BUCKETS_PER_WINDOW))
        lease_ms = int(lease_seconds * 1000)
        self.metrics = metrics or Metrics()
        self.local = LocalLimiter(
            bucket_ms=bucket_ms,
            nbuckets=BUCKETS_PER_WINDOW,
            lease_ms=lease_ms,
            prefix=self.prefix,
            clock=clock,
        )
        self.remote = (
            RedisLimiter(link, bucket_ms=bucket_ms, nbuckets=BUCKETS_PER_WINDOW, lease_ms=lease_ms)
            if link is not None
            else None
        )
        self._clock = clock
        self._ids = itertools.count()
        self._replica = uuid.uuid4().hex[:12]
        self._pending: set[asyncio.Task[None]] = set()
        self._periods: dict[str, tuple[float, float, str, int]] = {}
        if link is not None:
            self.metrics.redis_up.set(1)
            link.listeners.append(lambda up: self.metrics.redis_up.set(1 if up else 0))

    # --- before the upstream call ------------------------------------------------

    def check_client(self, record: CallRecord) -> None:
        """The key's client address allow-list (right after authentication)."""
        check_client_address(record.key, record.client_ip, record.shadow_refusals)

    async def admit(
        self,
        index: SnapshotIndex,
        record: CallRecord,
        route: ModelRoute,
        payload: Mapping[str, Any],
        estimate_input: Callable[[], int],
        media: CallUnits | None = None,
    ) -> None:
        """Admit the call or raise (403 scope/unpriced, 429 limit/budget, 503 when Redis
        is unreachable and the org fails closed). Sets `record.admission` when something
        was charged, and the x-ratelimit-* headers of the answer. `payload` is the
        request (its max_tokens bounds a budget reservation); `estimate_input` counts its
        input tokens, called only when a rule needs them; `media` is the most a media call
        can be billed for in its own units (images, pages, seconds, characters)."""
        key = record.key
        shadow = record.shadow_refusals
        scope_shadow(key, route, shadow)
        org = key.org
        if org.unpriced == "refuse":
            self._check_priced(index, record, route)
        if shadow:
            for rule in shadow:
                self.metrics.shadow_refusal(rule)
        if not (key.governed or route.limits.active or route.target_quotas):
            return
        # Counted once, only when a token rule, a budget or a target quota needs it.
        if (
            key.limits.tpm
            or org.limits.tpm
            or route.limits.tpm
            or key.budgets
            or org.budgets
            or route.target_quotas
        ):
            record.input_estimate = max(0, estimate_input())
        plan = self._plan(index, record, route, payload, media)
        if plan.empty:
            return
        verdict, limiter = await self._run(plan, org.on_redis_failure)
        for i in verdict.shadow:
            rule = plan.rule_name(i)
            shadow.append(rule)
            self.metrics.shadow_refusal(rule)
        headers = rate_headers(plan, verdict, self.local.bucket_ms, self.local.nbuckets)
        if not verdict.admitted:
            raise self._refusal(record, route, plan, verdict, headers)
        record.admission = Ticket(plan, verdict, limiter)
        if headers:
            record.response_headers = [(n.encode(), v.encode()) for n, v in headers]

    def _check_priced(self, index: SnapshotIndex, record: CallRecord, route: ModelRoute) -> None:
        if reservation_prices(index, route, record.ts, 0, 0) is not None:
            return
        if "unpriced" in record.key.org.shadow:
            record.shadow_refusals.append("org.unpriced")
            return
        record.refused_by = "org.unpriced"
        self.metrics.limiter_refusal("org.unpriced")
        raise PermissionDenied(
            f"the model '{route.name}' has no price, and organization '{record.key.org_name}' "
            "refuses calls to unpriced models",
            code="model_unpriced",
            param="model",
        )

    def _plan(
        self,
        index: SnapshotIndex,
        record: CallRecord,
        route: ModelRoute,
        payload: Mapping[str, Any],
        media: CallUnits | None = None,
    ) -> Plan:
        key: KeyRecord = record.key
        org = key.org
        budgets = [("key", key.id, b, key.shadow) for b in key.budgets]
        budgets.extend(("org", key.org_id, b, org.shadow) for b in org.budgets)
        tokens = max(0, record.input_estimate)
        plan = Plan(call_id=f"{self._replica}:{next(self._ids)}")
        p = self.prefix
        self._rates(plan, "key", f"{p}rl:k:{key.id}", key.limits, tokens, key.shadow)
        self._rates(plan, "org", f"{p}rl:o:{key.org_id}", org.limits, tokens, org.shadow)
        self._rates(plan, "model", f"{p}rl:m:{key.org_id}:{route.name}", route.limits, tokens, route.shadow)
        if key.concurrency:
            plan.slots.append(
                ConcurrencySlot(
                    "key.concurrency", f"{p}cc:k:{key.id}", key.concurrency, "concurrency" not in key.shadow
                )
            )
        if budgets:
            now = record.ts
            # Only chat models answer with tokens; an embedding's cost is its input.
            max_output = requested_output_tokens(payload, route) if route.capability == "llm" else 0
            prices = reservation_prices(index, route, now, tokens, max_output, media)
            worst = (
                worst_case_cost(prices.per_million, tokens, max_output, media) if prices is not None else 0.0
            )
            for scope, owner, budget, owner_shadow in budgets:
                if prices is not None and prices.currency != budget.currency:
                    continue  # costs in another currency never reach this budget (docs/limits.md)
                pid, end = self._period(budget.period, now)
                plan.budgets.append(
                    BudgetCharge(
                        name=f"{scope}.budget.{budget.period}",
                        key=budget_key_of(p, scope, owner, budget.period, pid, budget.currency),
                        limit_nano=to_nano(budget.amount),
                        reserve_nano=math.ceil(worst * 1e9),
                        period_end=end,
                        currency=budget.currency,
                        enforce="budget" not in owner_shadow,
                    )
                )
        return plan

    def _period(self, period: str, now: float) -> tuple[str, int]:
        """(period id, end in Unix seconds or 0) of the period containing `now`, cached
        until the period ends (calendar arithmetic once a day, not once a call)."""
        cached = self._periods.get(period)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2], cached[3]
        start, end = period_bounds(period, now)
        end_s = int(end.timestamp()) if end is not None else 0
        entry = (
            start.timestamp() if start is not None else float("-inf"),
            float(end_s) if end is not None else float("inf"),
            period_id(period, now),
            end_s,
        )
        self._periods[period] = entry
        return entry[2], entry[3]

    @staticmethod
    def _rates(
        plan: Plan, owner: str, base: str, quota: RateQuota, tokens: int, shadow: frozenset[str]
    ) -> None:
        if quota.rpm:
            plan.rates.append(RateCharge(f"{owner}.rpm", base + ":rpm", quota.rpm, 1, "rpm" not in shadow))
        if quota.tpm:
            plan.rates.append(
                RateCharge(f"{owner}.tpm", base + ":tpm", quota.tpm, tokens, "tpm" not in shadow, tokens=True)
            )

    async def _run(self, plan: Plan, on_redis_failure: str) -> tuple[Verdict, RedisLimiter | LocalLimiter]:
        remote = self.remote
        if remote is None:
            return self.local.admit_now(plan), self.local
        try:
            return await remote.admit(plan), remote
        except (RedisDown, RedisError) as exc:
            if not isinstance(exc, RedisDown):
                log.warning("limiter script failed: %s", exc)
            if on_redis_failure == "closed":
                self.metrics.limiter_fallback("refused")
                raise ServiceUnavailable(
                    "limits cannot be checked right now (the gateway's counter store is "
                    "unreachable); try again shortly",
                    code="limits_unavailable",
                ) from None
            self.metrics.limiter_fallback("local")
            return self.local.admit_now(plan), self.local

    def _refusal(
        self,
        record: CallRecord,
        route: ModelRoute,
        plan: Plan,
        verdict: Verdict,
        headers: list[tuple[str, str]],
    ) -> RateLimited:
        rule = plan.rule_name(verdict.refused)
        record.refused_by = rule
        self.metrics.limiter_refusal(rule)
        return refusal_error(record.key, route, plan, verdict, headers)

    # --- targets' own quotas (failover) --------------------------------------------

    async def target_admit(self, target: Target, record: CallRecord) -> bool:
        """Count one attempt against `target`'s own quota (per provider and upstream
        model); False when it is over quota (the call overflows). Free for targets
        without a quota; one extra limiter round trip for those with one."""
        quota = target.limits
        if not quota.active:
            return True
        name = target.price_name
        tokens = max(0, record.input_estimate)
        plan = Plan(call_id=f"{self._replica}:{next(self._ids)}")
        self._rates(plan, "target", f"{self.prefix}rl:t:{name}", quota, tokens, frozenset())
        try:
            verdict, limiter = await self._run(plan, record.key.org.on_redis_failure)
        except ServiceUnavailable:
            return False  # fail closed: an unknowable quota counts as reached
        if not verdict.admitted:
            self.metrics.limiter_refusal(plan.rule_name(verdict.refused))
            return False
        ticket = record.admission
        if ticket is None:
            ticket = record.admission = Ticket(Plan(call_id=plan.call_id), verdict, limiter)
        ticket.targets.append((name, plan, verdict, limiter))
        return True

    # --- after the answer -----------------------------------------------------------

    def finish(self, record: CallRecord) -> None:
        """Settle an admitted call (after its usage event is made: the same bill)."""
        ticket = record.admission
        if ticket is None:
            return
        record.admission = None
        usage = record.usage
        real_tokens = usage.input_tokens + usage.output_tokens if usage is not None else 0
        bill = record.bill()
        cost_nano = to_nano(bill.cost)
        jobs: list[tuple[RedisLimiter | LocalLimiter, Plan, Verdict, Settlement]] = []
        plan = ticket.plan
        if not plan.empty:
            settlement = Settlement(
                token_deltas=[real_tokens - r.amount if r.tokens else 0 for r in plan.rates],
                costs_nano=[cost_nano if b.currency == bill.currency else 0 for b in plan.budgets],
            )
            # An rpm-only plan has nothing to settle: no slot, no budget, no token delta.
            if plan.slots or plan.budgets or any(settlement.token_deltas):
                jobs.append((ticket.limiter, plan, ticket.verdict, settlement))
        answered = f"{record.provider}/{record.upstream_model}"
        for name, tplan, tverdict, limiter in ticket.targets:
            # Only the target that answered used its tokens; the others were attempts.
            used = real_tokens if name == answered else 0
            deltas = [used - r.amount if r.tokens else 0 for r in tplan.rates]
            if any(deltas):
                jobs.append((limiter, tplan, tverdict, Settlement(token_deltas=deltas, costs_nano=[])))
        for limiter, jplan, jverdict, settlement in jobs:
            if isinstance(limiter, LocalLimiter):
                limiter.settle_now(jplan, jverdict, settlement)
            else:
                task = asyncio.get_running_loop().create_task(
                    self._settle_remote(limiter, jplan, jverdict, settlement)
                )
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _settle_remote(
        self, limiter: RedisLimiter, plan: Plan, verdict: Verdict, settlement: Settlement
    ) -> None:
        try:
            await limiter.settle(plan, verdict, settlement)
        except (RedisDown, RedisError) as exc:
            # Slots and reservations then lapse with their lease; the real cost is lost
            # to the budget (docs/limits.md, "When Redis is unreachable").
            log.warning("could not settle call %s: %s", plan.call_id, exc)

    async def readiness(self) -> dict[str, Any]:
        """What /readyz says about limits: "embedded" (in-memory counters), "up", or
        "degraded" (Redis unreachable: limits run locally or refuse, per org policy)."""
        link = self.link
        if link is None:
            return {"redis": "embedded"}
        if not link.healthy and not link.skipping:
            await link.ping()  # bounded by the link's timeout; may bring it back up
        if link.healthy:
            return {"redis": "up"}
        return {"redis": "degraded", "redis_error": link.last_error}

    async def drain(self) -> None:
        """Wait for settlements in flight (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self.link is not None:
            await self.link.close()
