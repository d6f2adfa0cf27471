"""In-process governance state of an embedded data plane, for the control plane to read.

In embedded mode (no Redis) breakers and budget counters live in the data plane's memory;
the control plane runs in the same process there and reads them through these globals.
In split mode they stay None and the control plane reads Redis instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LOCAL_BREAKERS", "LOCAL_BUDGETS"]

# The data plane's in-memory breaker store (set by the data plane in embedded mode).
LOCAL_BREAKERS: Any = None
# The data plane's in-memory limiter, whose `read_budget_usage` mirrors
# switchyard_common.budget_state.read_budget_usage (set in embedded mode).
LOCAL_BUDGETS: Any = None
