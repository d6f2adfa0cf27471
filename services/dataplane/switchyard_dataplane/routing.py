"""Which targets a call tries, in which order: pure functions over the snapshot index.

Strategies (the model's `routing`, else its caller's organization policy):

- `priority`: ascending priority; equal priorities shuffled by weight per call.
- `weighted`: a random order drawn by weight over all targets (the first pick is
  proportional to weight, the others follow as fallbacks in the same way); weight 0
  targets come last, by priority.
- `least_latency`: ascending moving average of time to first byte on this replica;
  targets not measured yet come first (by priority) so that they get measured.
- `lowest_cost`: ascending target price (`<provider>/<upstream_model>` prices in effect
  now, for a nominal call of 1,000 input and 1,000 output tokens); targets without a
  price come last, by priority.

The organization's `allowed_providers` filters the targets first; disabled providers
were dropped when the index was built. Breakers and quotas are not looked at here: the
attempt loop skips targets whose breaker is open (call_handler.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from switchyard_common.errors import ConfigIssue, PermissionDenied
from switchyard_common.proto.controlplane_pb2 import Snapshot

from .latency import LatencyTracker

if TYPE_CHECKING:
    from .index import ModelRoute, OrgPolicyRecord, Target


class _Priced(Protocol):
    @property
    def per_million(self) -> Mapping[str, float]: ...


PriceLookup = Callable[[str, float], "_Priced | None"]
CostOf = Callable[["Target"], "float | None"]

# Units priced per token; a nominal call has 1,000 of each kind (any other unit: one).
_TOKEN_UNITS = ("input_token", "output_token")
_TOKEN_DETAIL_UNITS = frozenset({"cached_input_token", "cache_write_token", "reasoning_token"})

__all__ = [
    "LEAST_LATENCY",
    "LOWEST_COST",
    "PRIORITY",
    "STRATEGIES",
    "WEIGHTED",
    "Router",
    "allowed_targets",
    "nominal_cost",
    "order_targets",
    "routing_issues",
]

PRIORITY = "priority"
WEIGHTED = "weighted"
LEAST_LATENCY = "least_latency"
LOWEST_COST = "lowest_cost"
STRATEGIES = frozenset({PRIORITY, WEIGHTED, LEAST_LATENCY, LOWEST_COST})

Random = Callable[[], float]


def _weighted_key(target: Target, rand: Random) -> float:
    # Efraimidis-Spirakis: sorting by u^(1/w) descending draws a permutation in which
    # each position is picked with probability proportional to weight.
    return rand() ** (1.0 / target.weight) if target.weight > 0 else -1.0


def _weighted(group: Sequence[Target], rand: Random) -> list[Target]:
    if len(group) == 1:
        return list(group)
    return sorted(group, key=lambda t: _weighted_key(t, rand), reverse=True)


def _by_priority(targets: Sequence[Target], rand: Random) -> tuple[Target, ...]:
    """`targets` are sorted by priority already; shuffle each tie group by weight."""
    ordered: list[Target] = []
    start = 0
    for i in range(1, len(targets) + 1):
        if i == len(targets) or targets[i].priority != targets[start].priority:
            group = targets[start:i]
            ordered.extend(_weighted(group, rand) if len(group) > 1 else group)
            start = i
    return tuple(ordered)


def nominal_cost(prices: _Priced | None) -> float | None:
    """What a nominal call (1,000 input and 1,000 output tokens, one request) costs at
    `prices`, to rank targets; None when unpriced. Currencies are assumed to agree."""
    if prices is None or not prices.per_million:
        return None
    p = prices.per_million
    if any(unit in p for unit in _TOKEN_UNITS):
        return 1000 * (p.get("input_token", 0.0) + p.get("output_token", 0.0)) + p.get("request", 0.0)
    # Another capability (images, pages, seconds, characters): one of each of its units.
    return sum(v for unit, v in p.items() if unit not in _TOKEN_DETAIL_UNITS)


def order_targets(
    targets: Sequence[Target],
    strategy: str,
    *,
    rand: Random = random.random,
    latency: LatencyTracker | None = None,
    cost_of: CostOf | None = None,
) -> tuple[Target, ...]:
    """`targets` (sorted by priority) in the order the strategy tries them."""
    if len(targets) <= 1:
        return tuple(targets)
    if strategy == WEIGHTED:
        live = [t for t in targets if t.weight > 0]
        return (*_weighted(live, rand), *(t for t in targets if t.weight <= 0))
    if strategy == LEAST_LATENCY and latency is not None:
        rank = {t.breaker.id: latency.get(t.breaker.id) for t in targets}
        # Stable sort: unmeasured first in priority order, then the fastest first.
        return tuple(
            sorted(
                _by_priority(targets, rand),
                key=lambda t: (0, 0.0) if rank[t.breaker.id] is None else (1, rank[t.breaker.id]),
            )
        )
    if strategy == LOWEST_COST and cost_of is not None:
        costs = {t.breaker.id: cost_of(t) for t in targets}
        return tuple(
            sorted(
                _by_priority(targets, rand),
                key=lambda t: (1, 0.0) if costs[t.breaker.id] is None else (0, costs[t.breaker.id]),
            )
        )
    return _by_priority(targets, rand)


def allowed_targets(route: ModelRoute, org: OrgPolicyRecord) -> Sequence[Target]:
    """The route's targets the organization may use; PermissionDenied when none."""
    allowed = org.allowed_providers
    if not allowed:
        return route.targets
    targets = [t for t in route.targets if t.runtime.slug in allowed]
    if not targets:
        raise PermissionDenied(
            f"organization '{org.name}' may not use any provider of the model '{route.name}' "
            f"(its allowed providers: {', '.join(sorted(allowed))})",
            code="provider_not_allowed",
            param="model",
        )
    return targets


class Router:
    """Orders a call's targets; holds this replica's latency averages."""

    def __init__(
        self,
        latency: LatencyTracker | None = None,
        *,
        rand: Random = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.latency = latency or LatencyTracker()
        self._rand = rand
        self._clock = clock

    def plan(
        self, route: ModelRoute, org: OrgPolicyRecord, price_at: PriceLookup | None = None
    ) -> tuple[Target, ...]:
        """`price_at(name, now)` gives the prices in effect (SnapshotIndex.price_at);
        `lowest_cost` needs it."""
        targets = allowed_targets(route, org)
        strategy = route.routing or org.routing
        if strategy == PRIORITY and targets is route.targets and not route.has_ties:
            return route.targets  # the common case: no work per call
        cost_of: CostOf | None = None
        if strategy == LOWEST_COST and price_at is not None:
            now = self._clock()
            lookup = price_at

            def cost_of(target: Target) -> float | None:
                return nominal_cost(lookup(target.price_name, now))

        return order_targets(targets, strategy, rand=self._rand, latency=self.latency, cost_of=cost_of)


def routing_issues(snapshot: Snapshot) -> list[ConfigIssue]:
    """Strategy and overflow names the data plane does not know (the snapshot is refused)."""
    issues: list[ConfigIssue] = []
    for org in snapshot.organizations:
        where = f"organizations[{org.name}].policy"
        if org.policy.routing and org.policy.routing not in STRATEGIES:
            issues.append(ConfigIssue(f"{where}.routing", f"unknown routing strategy '{org.policy.routing}'"))
        if org.policy.overflow not in ("", "next_target", "fail"):
            issues.append(
                ConfigIssue(f"{where}.overflow", f"unknown overflow policy '{org.policy.overflow}'")
            )
    for model in snapshot.models:
        if model.routing and model.routing not in STRATEGIES:
            issues.append(
                ConfigIssue(f"models[{model.name}].routing", f"unknown routing strategy '{model.routing}'")
            )
    return issues
