"""The 429 a refused call gets: which rule, in words the caller can act on, with the
retry hints and the x-ratelimit-* headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchyard_common.errors import QuotaExceeded, RateLimited

from .headers import format_duration
from .plan import Plan, Verdict

if TYPE_CHECKING:
    from ..index import KeyRecord, ModelRoute

__all__ = ["refusal_error"]


def refusal_error(
    key: KeyRecord, route: ModelRoute, plan: Plan, verdict: Verdict, headers: list[tuple[str, str]]
) -> RateLimited:
    index = verdict.refused
    rule = plan.rule_name(index)
    kind = plan.kind(index)
    retry = verdict.retry_ms / 1000 if verdict.retry_ms >= 0 else -1.0
    retry_ms_header = [("retry-after-ms", str(verdict.retry_ms))] if verdict.retry_ms > 0 else []
    owner = rule.split(".", 1)[0]
    who = {
        "key": f"API key '{key.name}'",
        "org": f"organization '{key.org_name}'",
        "model": f"model '{route.name}' in organization '{key.org_name}'",
    }.get(owner, owner)
    if kind == "budget":
        position = index - 1 - len(plan.rates) - len(plan.slots)
        charge = plan.budgets[position]
        period = rule.rsplit(".", 1)[1]
        used = verdict.budget_used[position] / 1e9
        message = (
            f"You exceeded the {period} budget of {who}: {charge.limit_nano / 1e9:g} {charge.currency}, "
            f"{used:.6g} spent or reserved, this call may cost up to {charge.reserve_nano / 1e9:.6g}."
        )
        # No retry-after-ms: SDKs would retry on it; a budget frees only at the period's end.
        return QuotaExceeded(message, retry_after=retry, headers=tuple(headers))
    if kind == "concurrency":
        slot = plan.slots[index - 1 - len(plan.rates)]
        message = (
            f"Too many concurrent requests for {who}: limit {slot.limit}. "
            "Please try again when a request has finished."
        )
        return RateLimited(message, retry_after=retry, headers=tuple(headers + retry_ms_header))
    rate = plan.rates[index - 1]
    unit = "tokens per minute (TPM)" if rate.tokens else "requests per minute (RPM)"
    if verdict.retry_ms < 0:
        message = f"Request too large for {who} on {unit}: Limit {rate.limit}, Requested {rate.amount}."
        return RateLimited(message, retry_after=-1, headers=tuple(headers))
    message = (
        f"Rate limit reached for {who} on {unit}: Limit {rate.limit}, Used {verdict.used[index - 1]}, "
        f"Requested {rate.amount}. Please try again in {format_duration(verdict.retry_ms)}."
    )
    return RateLimited(message, retry_after=retry, headers=tuple(headers + retry_ms_header))
