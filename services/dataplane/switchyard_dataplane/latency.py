"""Moving average of each target's time to first byte, for `least_latency` routing.

Local to each data-plane replica (no shared state: every replica measures the targets
it calls, which is what its own callers will meet). Keyed by the target's breaker id
(provider, epoch, upstream model), so a provider whose URL or credential changed is
measured afresh.
"""

from __future__ import annotations

__all__ = ["LatencyTracker"]


class LatencyTracker:
    """EWMA of seconds per target; `alpha` weighs the newest observation."""

    __slots__ = ("_alpha", "_ewma")

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self._alpha = alpha
        self._ewma: dict[str, float] = {}

    def get(self, target: str) -> float | None:
        """The average in seconds; None while the target is unmeasured."""
        return self._ewma.get(target)

    def observe(self, target: str, seconds: float) -> None:
        current = self._ewma.get(target)
        if current is None:
            self._ewma[target] = seconds
        else:
            self._ewma[target] = current + self._alpha * (seconds - current)

    def observe_failure(self, target: str, seconds: float) -> None:
        """A failed attempt counts as at least twice the current average, so a target
        that fails fast does not look fast (and one that never answers is measured)."""
        current = self._ewma.get(target)
        self.observe(target, max(seconds, 2.0 * current) if current is not None else seconds)
