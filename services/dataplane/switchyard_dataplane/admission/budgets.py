"""Budget reservations: the worst-case cost of a call before it runs.

A call reserves `ceil(input_estimate * INPUT_MARGIN) + INPUT_SLACK` input tokens at the
highest input-side rate of its price table plus its output allowance (max_tokens, else
the model's max_output_tokens) at the highest output-side rate, plus the per-request
price. Settlement replaces the reservation with the real cost (docs/limits.md states
the overspend bound this gives).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from switchyard_common.budget_state import NANO

if TYPE_CHECKING:
    from ..index import ModelRoute, PriceTable, SnapshotIndex
    from ..metering import CallUnits

__all__ = [
    "INPUT_MARGIN",
    "INPUT_SLACK",
    "reservation_prices",
    "requested_output_tokens",
    "to_nano",
    "worst_case_cost",
]

# Local counts use one tokenizer (cl100k); upstream tokenizers differ by up to ~20%
# on ordinary text. The margin keeps the reservation above the real input cost.
INPUT_MARGIN = 1.25
INPUT_SLACK = 16
_INPUT_RATES = ("input_token", "cached_input_token", "cache_write_token")
_OUTPUT_RATES = ("output_token", "reasoning_token")
# Request fields that cap the answer's length, per protocol (OpenAI has two names).
_MAX_OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def to_nano(amount: float) -> int:
    return int(round(amount * NANO))


def requested_output_tokens(payload: Mapping[str, Any], route: ModelRoute) -> int:
    """The call's output allowance: what the caller capped it at, else the model's
    configured `max_output_tokens`."""
    for name in _MAX_OUTPUT_FIELDS:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return route.max_output_tokens


def worst_case_cost(
    rates: Mapping[str, float], input_tokens: int, output_tokens: int, media: CallUnits | None = None
) -> float:
    """Upper bound of a call's cost: every input token at the dearest input-side rate,
    every output token at the dearest output-side rate, the media units the request
    asks for (images, pages, seconds, characters: media/requests.py), plus the request
    price."""
    reserved_input = math.ceil(input_tokens * INPUT_MARGIN) + INPUT_SLACK if input_tokens else 0
    input_rate = max((rates.get(unit, 0.0) for unit in _INPUT_RATES), default=0.0)
    output_rate = max((rates.get(unit, 0.0) for unit in _OUTPUT_RATES), default=0.0)
    total = input_rate * reserved_input + output_rate * output_tokens + rates.get("request", 0.0)
    if media is not None:
        total += (
            rates.get("image", 0.0) * media.images
            + rates.get("page", 0.0) * media.pages
            + rates.get("second", 0.0) * media.audio_seconds
            + rates.get("character", 0.0) * media.characters
        )
    return total / 1e6


def reservation_prices(
    index: SnapshotIndex,
    route: ModelRoute,
    now: float,
    input_tokens: int,
    output_tokens: int,
    media: CallUnits | None = None,
) -> PriceTable | None:
    """The prices a reservation uses: the public model's; without one, the dearest of
    its targets' prices (any of them may answer). None when nothing is priced."""
    public = index.price_at(route.name, now)
    if public is not None and public.per_million:
        return public
    dearest: PriceTable | None = None
    dearest_cost = -1.0
    for target in route.targets:
        table = index.price_at(target.price_name, now)
        if table is None or not table.per_million:
            continue
        cost = worst_case_cost(table.per_million, input_tokens, output_tokens, media)
        if cost > dearest_cost:
            dearest, dearest_cost = table, cost
    return dearest
