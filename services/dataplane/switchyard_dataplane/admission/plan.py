"""What one admission asks of a limiter (the rules, with their counters) and what the
limiter answers. Both limiters (Redis, in-memory) take the same Plan and give the same
Verdict, so their behaviour is tested with the same cases."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BudgetCharge", "ConcurrencySlot", "Plan", "RateCharge", "Settlement", "Verdict"]


@dataclass(slots=True)
class RateCharge:
    name: str  # rule name as reported: "key.rpm", "org.tpm", "model.rpm", "target.tpm"
    key: str  # counter key (Redis key, or the local store's key)
    limit: int
    amount: int  # 1 for a request rule, the estimated tokens for a token rule
    enforce: bool = True  # False: shadow mode (records, never refuses)
    tokens: bool = False


@dataclass(slots=True)
class ConcurrencySlot:
    name: str  # "key.concurrency"
    key: str
    limit: int
    enforce: bool = True


@dataclass(slots=True)
class BudgetCharge:
    name: str  # "key.budget.day", "org.budget.month"
    key: str
    limit_nano: int
    reserve_nano: int  # the call's worst-case cost
    period_end: int  # Unix seconds; 0 for "total"
    currency: str
    enforce: bool = True


@dataclass(slots=True)
class Plan:
    call_id: str
    rates: list[RateCharge] = field(default_factory=list)
    slots: list[ConcurrencySlot] = field(default_factory=list)
    budgets: list[BudgetCharge] = field(default_factory=list)
    # Fixed clock for tests (Unix ms); 0 = the limiter's own (Redis TIME / wall clock).
    now_ms: int = 0

    def rule_name(self, index: int) -> str:
        """Name of the rule at 1-based `index` over rates, slots, budgets."""
        i = index - 1
        if i < len(self.rates):
            return self.rates[i].name
        i -= len(self.rates)
        if i < len(self.slots):
            return self.slots[i].name
        return self.budgets[i - len(self.slots)].name

    def kind(self, index: int) -> str:
        i = index - 1
        if i < len(self.rates):
            return "rate"
        return "concurrency" if i - len(self.rates) < len(self.slots) else "budget"

    @property
    def empty(self) -> bool:
        return not (self.rates or self.slots or self.budgets)


@dataclass(slots=True)
class Verdict:
    admitted: bool
    refused: int  # 1-based rule index, 0 when admitted
    # Milliseconds until the refusing rule could admit this call; -1 = never (the call
    # alone exceeds the limit, or a "total" budget is spent).
    retry_ms: int
    now_ms: int
    bucket: int  # the rate sub-bucket charged (settlement corrects tokens there)
    shadow: list[int]  # 1-based indexes of shadow rules that would have refused
    used: list[int]  # per rate rule: use in the window before this call
    resets: list[int]  # per rate rule: ms until the window's use is all gone
    budget_used: list[int]  # per budget: spent + reserved before this call (nano)


@dataclass(slots=True)
class Settlement:
    """What settles one admitted call: token corrections per rate rule (real - estimate,
    0 for request rules) and the real cost per budget (nano-units of its currency)."""

    token_deltas: list[int]
    costs_nano: list[int]
