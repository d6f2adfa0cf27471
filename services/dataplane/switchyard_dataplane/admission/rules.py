"""The governance rules of the snapshot, as immutable values (built once per snapshot)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from switchyard_common.proto.controlplane_pb2 import Budget, RateLimits

__all__ = [
    "NO_QUOTA",
    "BudgetRule",
    "Network",
    "RateQuota",
    "budget_rules",
    "networks",
    "quota",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True, frozen=True)
class RateQuota:
    """Requests and tokens per rate window; 0 = no limit."""

    rpm: int = 0
    tpm: int = 0

    @property
    def active(self) -> bool:
        return self.rpm > 0 or self.tpm > 0


NO_QUOTA = RateQuota()


@dataclass(slots=True, frozen=True)
class BudgetRule:
    amount: float
    currency: str
    # day | week | month | total (UTC calendar periods)
    period: str


def quota(limits: RateLimits) -> RateQuota:
    if limits.rpm <= 0 and limits.tpm <= 0:
        return NO_QUOTA
    return RateQuota(rpm=max(0, limits.rpm), tpm=max(0, limits.tpm))


def budget_rules(budgets: Iterable[Budget]) -> tuple[BudgetRule, ...]:
    return tuple(
        BudgetRule(amount=b.amount, currency=(b.currency or "USD").upper(), period=b.period or "month")
        for b in budgets
        if b.amount > 0
    )


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Parsed CIDRs; raises ValueError naming the first one that does not parse."""
    parsed: list[Network] = []
    for cidr in cidrs:
        try:
            parsed.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP network: {cidr!r}") from None
    return tuple(parsed)
