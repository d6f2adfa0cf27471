"""Reasoning effort <-> thinking budget, shared by every codec.

OpenAI-style APIs take an effort level; Anthropic and Gemini take a token budget. The
budgets follow the effort levels' usual meaning; a budget maps back to the effort whose
budget is nearest on a log scale (the geometric midpoints 2048 and 8192 split them).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_EFFORT",
    "EFFORT_BUDGETS",
    "MIN_THINKING_BUDGET",
    "budget_to_effort",
    "effort_to_budget",
]

# Anthropic rejects thinking budgets under 1024 tokens.
MIN_THINKING_BUDGET = 1024
DEFAULT_EFFORT = "medium"
EFFORT_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}


def effort_to_budget(effort: str | None) -> int:
    """Budget tokens for an effort level; unknown or missing levels count as medium."""
    return EFFORT_BUDGETS.get(effort or DEFAULT_EFFORT, EFFORT_BUDGETS[DEFAULT_EFFORT])


def budget_to_effort(budget: int | None) -> str:
    """The effort level nearest to a budget; no budget means medium."""
    if budget is None:
        return DEFAULT_EFFORT
    if budget < 2048:
        return "low"
    if budget < 8192:
        return "medium"
    return "high"
