"""OpenAI's `x-ratelimit-*` response headers, from a limiter verdict (no extra lookups).

When several request (or token) rules apply — key, organization, model — the headers
describe the one with the least room left, which is the one a client must pace to.
"""

from __future__ import annotations

from .plan import Plan, Verdict

__all__ = ["format_duration", "rate_headers"]


def format_duration(ms: int) -> str:
    """A duration as OpenAI writes it (Go's style): "20ms", "1s", "1.5s", "6m0s"."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m" + (f"{rest:.3f}".rstrip("0").rstrip(".") or "0") + "s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h{minutes}m{int(rest)}s"


def rate_headers(plan: Plan, verdict: Verdict, bucket_ms: int, nbuckets: int) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for tokens, kind in ((False, "requests"), (True, "tokens")):
        best: tuple[int, int, int] | None = None  # (remaining, limit, reset_ms)
        for i, rule in enumerate(plan.rates):
            if rule.tokens is not tokens or not rule.enforce:
                continue
            used = verdict.used[i]
            reset = verdict.resets[i]
            if verdict.admitted and rule.amount > 0:
                used += rule.amount
                reset = (verdict.bucket + nbuckets) * bucket_ms - verdict.now_ms
            remaining = max(0, rule.limit - used)
            if best is None or remaining < best[0]:
                best = (remaining, rule.limit, reset)
        if best is not None:
            headers.append((f"x-ratelimit-limit-{kind}", str(best[1])))
            headers.append((f"x-ratelimit-remaining-{kind}", str(best[0])))
            headers.append((f"x-ratelimit-reset-{kind}", format_duration(best[2])))
    return headers
