"""Budget counters shared by the data plane (which writes them) and the control plane
(which shows them): UTC calendar periods, Redis key names, and the reader.

One Redis hash per (scope, owner, period instance, currency):
`<prefix>bud:<scope>:<owner id>:<period>:<period id>:<currency>` with integer fields
`spent` and `reserved` in nano-units of the currency (1e-9), and `r:<call id>` for each
open reservation; `<that key>:r` is a sorted set of the open reservations by lease
expiry (Unix ms) so that reservations of crashed replicas are released.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

__all__ = [
    "NANO",
    "PERIODS",
    "BudgetLike",
    "BudgetUsage",
    "Scope",
    "budget_key",
    "budget_key_of",
    "period_bounds",
    "period_id",
    "read_budget_usage",
    "reservations_key",
    "usage_of",
]

PERIODS = ("day", "week", "month", "total")
# Amounts are counted in integers of 1e-9 currency units: exact sums, HINCRBY-able.
NANO = 1_000_000_000

Scope = Literal["key", "org"]


class BudgetLike(Protocol):
    """A budget as the snapshot (proto Budget), the config (BudgetSpec) or the data plane
    (BudgetRule) spells it."""

    @property
    def amount(self) -> float: ...
    @property
    def currency(self) -> str: ...
    @property
    def period(self) -> str: ...


@dataclass(slots=True, frozen=True)
class BudgetUsage:
    period: str
    period_start: datetime | None  # None for "total"
    period_end: datetime | None  # exclusive; None for "total"
    amount: float
    currency: str
    spent: float
    reserved: float  # worst-case cost of calls admitted and not yet settled
    remaining: float  # amount - spent - reserved, never below 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "amount": self.amount,
            "currency": self.currency,
            "spent": self.spent,
            "reserved": self.reserved,
            "remaining": self.remaining,
        }


def period_bounds(period: str, now: float) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the UTC calendar period containing `now` (Unix seconds); weeks
    start on Monday (ISO 8601). "total" has no bounds."""
    if period == "total":
        return None, None
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return start, end
    raise ValueError(f"unknown budget period {period!r} (use {', '.join(PERIODS)})")


def period_id(period: str, now: float) -> str:
    start, _ = period_bounds(period, now)
    if start is None:
        return "all"
    return start.strftime("%Y%m" if period == "month" else "%Y%m%d")


def budget_key(prefix: str, scope: Scope, owner_id: str, period: str, currency: str, now: float) -> str:
    return budget_key_of(prefix, scope, owner_id, period, period_id(period, now), currency)


def budget_key_of(prefix: str, scope: str, owner_id: str, period: str, pid: str, currency: str) -> str:
    """The key of one period instance whose id (`period_id`) the caller already has."""
    return f"{prefix}bud:{scope}:{owner_id}:{period}:{pid}:{currency.upper()}"


def reservations_key(key: str) -> str:
    return key + ":r"


async def read_budget_usage(
    redis: Any, prefix: str, scope: Scope, owner_id: str, budgets: list[BudgetLike], now: float
) -> list[BudgetUsage]:
    """Current use of each of `budgets` of one key or organization (one round trip).

    `redis` is a redis.asyncio client; missing counters read as nothing spent."""
    keys = [
        budget_key(prefix, scope, owner_id, b.period or "month", b.currency or "USD", now) for b in budgets
    ]
    if not keys:
        return []
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "spent", "reserved")
    rows = await pipe.execute()
    return [usage_of(budget, row[0], row[1], now) for budget, row in zip(budgets, rows, strict=True)]


def usage_of(budget: BudgetLike, spent_nano: Any, reserved_nano: Any, now: float) -> BudgetUsage:
    """A BudgetUsage from raw counter values (bytes, str, int or None)."""
    period = budget.period or "month"
    start, end = period_bounds(period, now)
    spent = int(spent_nano or 0) / NANO
    reserved = max(0, int(reserved_nano or 0)) / NANO
    return BudgetUsage(
        period=period,
        period_start=start,
        period_end=end,
        amount=budget.amount,
        currency=(budget.currency or "USD").upper(),
        spent=spent,
        reserved=reserved,
        remaining=max(0.0, budget.amount - spent - reserved),
    )
