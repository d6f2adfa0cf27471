"""Which models would be billed at zero: the price-table check behind
`GET /api/v1/prices/check` and the warnings of `apply`.

Billing uses the public model's price for a unit and, when the public model has none, the
answering target's price (`<provider>/<upstream>`). A model is therefore unpriced when its
own prices miss a unit its capability is metered in AND some target has no price for that
unit either: a call answered by that target would cost 0. A `request` price covers every
unit (a flat price per call). Only prices already in effect count: a price scheduled for
next month does not price today's calls.

Pure domain code over plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["METERED_UNITS", "PricedEntry", "UnpricedModel", "check_prices"]

# The units each capability is metered in (usage event), i.e. those that need a price.
METERED_UNITS: Mapping[str, tuple[str, ...]] = {
    "llm": ("input_token", "output_token"),
    "embedding": ("input_token",),
    "image": ("image",),
    "vision-segment": ("image",),
    "ocr": ("page",),
    "asr": ("second",),
    "tts": ("character",),
}
_FLAT_UNIT = "request"
# Media answers that report tokens (gpt-image-1, gpt-4o-transcribe) may be priced by
# those instead of their own unit (docs/billing.md): either set prices the model.
_TOKEN_PRICED = {"image": ("input_token", "output_token"), "asr": ("input_token", "output_token")}


@dataclass(frozen=True)
class PricedEntry:
    model: str  # public model name or "<provider>/<upstream>"
    unit: str
    effective_from_ms: int = 0


@dataclass(frozen=True)
class UnpricedModel:
    model: str
    capability: str
    # Metered units the public model itself has no price for (now).
    missing_units: tuple[str, ...]
    # Targets ("<provider>/<upstream>") whose calls would cost 0 for some of those units.
    unpriced_targets: tuple[str, ...]

    @property
    def message(self) -> str:
        units = ", ".join(self.missing_units)
        targets = ", ".join(self.unpriced_targets)
        return (
            f"model {self.model!r} has no {units} price and neither do its targets {targets}: "
            "calls are billed at 0"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "capability": self.capability,
            "missing_units": list(self.missing_units),
            "unpriced_targets": list(self.unpriced_targets),
            "message": self.message,
        }


def _priced_units(prices: Iterable[PricedEntry], now_ms: int) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for price in prices:
        if price.effective_from_ms <= now_ms:
            units.setdefault(price.model, set()).add(price.unit)
    return units


def _missing(units: set[str], wanted: Sequence[str]) -> list[str]:
    if _FLAT_UNIT in units:
        return []
    return [unit for unit in wanted if unit not in units]


def check_prices(
    models: Iterable[tuple[str, str, Sequence[str]]],
    prices: Iterable[PricedEntry],
    *,
    now_ms: int,
) -> list[UnpricedModel]:
    """`models`: (public name, capability, target subjects "<provider>/<upstream>")."""
    priced = _priced_units(prices, now_ms)
    found = []
    for name, capability, targets in models:
        wanted = METERED_UNITS.get(capability, ())
        own = priced.get(name, set())
        missing = _missing(own, wanted)
        alternative = _TOKEN_PRICED.get(capability)
        if not missing or (alternative is not None and not _missing(own, alternative)):
            continue
        unpriced_targets = [t for t in targets if _missing(priced.get(t, set()), missing)]
        if unpriced_targets or not targets:
            found.append(UnpricedModel(name, capability, tuple(missing), tuple(unpriced_targets)))
    return found
