"""Price schedules: several prices per (model, unit) with `effective_from` dates.

Built once per snapshot: every date at which some unit's price changes becomes a change
point holding the full table then in effect, so a call finds its prices with one bisect
over a handful of change points (no per-request scan of the price list).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from switchyard_common.proto.controlplane_pb2 import Price

__all__ = ["PriceSchedule", "build_schedules"]

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class PriceSchedule(Generic[T]):
    # Ascending change points (Unix ms) and the table in effect from each.
    starts: tuple[int, ...]
    tables: tuple[T, ...]

    def at(self, now_ms: int) -> T | None:
        """The table in effect at `now_ms`; None before the first price applies."""
        if len(self.starts) == 1:  # the common case: one undated price set
            return self.tables[0] if self.starts[0] <= now_ms else None
        i = bisect_right(self.starts, now_ms)
        return self.tables[i - 1] if i else None


def build_schedules(
    prices: Iterable[Price], make: Callable[[Mapping[str, float], str], T]
) -> tuple[dict[str, PriceSchedule[T]], list[str]]:
    """One schedule per priced name; `make(per_million, currency)` builds a table.

    Returns the schedules and warnings (a table mixing currencies keeps the currency of
    its first unit: costs in it would be wrong, so the snapshot's author is told)."""
    # name -> unit -> [(from_ms, per_million, currency)]
    by_name: dict[str, dict[str, list[tuple[int, float, str]]]] = {}
    for price in prices:
        by_name.setdefault(price.model, {}).setdefault(price.unit, []).append(
            (max(0, price.effective_from_ms), price.per_million, (price.currency or "USD").upper())
        )
    schedules: dict[str, PriceSchedule[T]] = {}
    warnings: list[str] = []
    for name, units in by_name.items():
        for entries in units.values():
            entries.sort(key=lambda e: e[0])
        starts = sorted({e[0] for entries in units.values() for e in entries})
        tables: list[T] = []
        for start in starts:
            per_million: dict[str, float] = {}
            currencies: list[str] = []
            for unit, entries in units.items():
                current = None
                for entry in entries:
                    if entry[0] > start:
                        break
                    current = entry
                if current is not None:
                    per_million[unit] = current[1]
                    currencies.append(current[2])
            if len(set(currencies)) > 1:
                warnings.append(
                    f"prices[{name}]: units priced in different currencies {sorted(set(currencies))}"
                )
            tables.append(make(per_million, currencies[0] if currencies else "USD"))
        schedules[name] = PriceSchedule(starts=tuple(starts), tables=tuple(tables))
    return schedules, warnings
