"""What a call is billed for: its units per capability, and what they cost at per-unit
prices. Pure: no I/O, no snapshot lookups (index.py's PriceTable picks the rates).

Every price is `per_million` units of its kind (docs/billing.md): tokens, but also
images, pages, seconds of audio, characters and requests — an image at $0.04 is
`per_million: 40000`.

Token counts follow the upstreams' conventions, which `TokenUsage` keeps: input tokens
include the cached and the cache-written ones, output tokens include the reasoning
ones. A sub-kind with its own price (`cached_input_token`, `cache_write_token`,
`reasoning_token`) is billed at that price and taken out of its parent kind; without
one it stays in the parent and is billed at the parent's price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .protocols.ir import TokenUsage

__all__ = ["FREE", "MAIN_UNITS", "Bill", "CallUnits", "cost_of", "unpriced_units"]

# The price units a capability is metered in (sub-kinds fall back to these: cached and
# cache-written tokens to input_token, reasoning tokens to output_token). `request` is a
# flat price per call and prices every call on its own.
MAIN_UNITS = ("input_token", "output_token", "image", "page", "second", "character")


@dataclass(slots=True, frozen=True)
class CallUnits:
    """Everything one call is metered by. Each capability fills its own units: llm
    tokens (all kinds), embedding input tokens, image and vision-segment `images`, ocr
    `pages`, asr `audio_seconds`, tts `characters`; every billable call is one request."""

    input_tokens: int = 0  # all prompt tokens, cached and cache-written ones included
    output_tokens: int = 0  # all completion tokens, reasoning ones included
    cached_tokens: int = 0  # prompt tokens read from a cache
    cache_write_tokens: int = 0  # prompt tokens written to a cache (Anthropic)
    reasoning_tokens: int = 0
    images: int = 0
    pages: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    requests: int = 1

    @classmethod
    def of(
        cls,
        usage: TokenUsage | None,
        *,
        images: int = 0,
        pages: int = 0,
        audio_seconds: float = 0.0,
        characters: int = 0,
    ) -> CallUnits:
        usage = usage or _NO_TOKENS
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_creation_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            images=images,
            pages=pages,
            audio_seconds=audio_seconds,
            characters=characters,
        )


_NO_TOKENS = TokenUsage()


def cost_of(rates: Mapping[str, float], units: CallUnits) -> float:
    """The cost of `units` at `rates` (price unit -> price per million units)."""
    input_tokens = units.input_tokens
    output_tokens = units.output_tokens
    total = 0.0
    rate = rates.get("cached_input_token")
    if rate is not None and units.cached_tokens:
        total += rate * units.cached_tokens
        input_tokens -= units.cached_tokens
    rate = rates.get("cache_write_token")
    if rate is not None and units.cache_write_tokens:
        total += rate * units.cache_write_tokens
        input_tokens -= units.cache_write_tokens
    rate = rates.get("reasoning_token")
    if rate is not None and units.reasoning_tokens:
        total += rate * units.reasoning_tokens
        output_tokens -= units.reasoning_tokens
    # An upstream reporting more cached than prompt tokens must not earn a credit.
    total += rates.get("input_token", 0.0) * max(input_tokens, 0)
    total += rates.get("output_token", 0.0) * max(output_tokens, 0)
    total += rates.get("image", 0.0) * units.images
    total += rates.get("page", 0.0) * units.pages
    total += rates.get("second", 0.0) * units.audio_seconds
    total += rates.get("character", 0.0) * units.characters
    total += rates.get("request", 0.0) * units.requests
    return total / 1e6


def unpriced_units(rates: Mapping[str, float], units: CallUnits) -> tuple[str, ...]:
    """The price units `units` use that `rates` has no price for (then billed at 0);
    empty when the call is fully priced. A `request` price prices any call. A media call
    whose answer also reported tokens (gpt-image-1, gpt-4o-transcribe) is priced when
    either its media units or its tokens are."""
    if "request" in rates:
        return ()
    input_tokens = units.input_tokens
    if "cached_input_token" in rates:
        input_tokens -= units.cached_tokens
    if "cache_write_token" in rates:
        input_tokens -= units.cache_write_tokens
    output_tokens = units.output_tokens
    if "reasoning_token" in rates:
        output_tokens -= units.reasoning_tokens
    tokens = (("input_token", input_tokens > 0), ("output_token", output_tokens > 0))
    media = (
        ("image", units.images > 0),
        ("page", units.pages > 0),
        ("second", units.audio_seconds > 0),
        ("character", units.characters > 0),
    )
    token_gaps = [unit for unit, uses in tokens if uses and unit not in rates]
    media_gaps = [unit for unit, uses in media if uses and unit not in rates]
    both = any(uses for _, uses in tokens) and any(uses for _, uses in media)
    if both and (not token_gaps or not media_gaps):
        return ()
    return (*token_gaps, *media_gaps)


@dataclass(slots=True, frozen=True)
class Bill:
    """What a call costs, as the usage event carries it and budgets settle it.
    `unpriced`: some of the call's units had no price and were billed at 0 (the cost is
    then only that of the priced ones; the org's `unpriced: flag` policy admitted it)."""

    cost: float
    currency: str
    unpriced: bool


FREE = Bill(0.0, "USD", False)
