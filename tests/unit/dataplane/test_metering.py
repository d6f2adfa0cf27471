"""The cost of a call's units at per-unit prices, and the bill a call record makes."""

from __future__ import annotations

import pytest
from switchyard_dataplane.index import KeyRecord, PriceTable
from switchyard_dataplane.metering import CallUnits, cost_of, unpriced_units
from switchyard_dataplane.protocols.ir import TokenUsage
from switchyard_dataplane.usage_events import CallRecord

KEY = KeyRecord(
    id="k1",
    name="svc",
    org_id="o1",
    org_name="acme",
    scopes=frozenset(),
    models=frozenset(),
    revoked=False,
    expires_at=0,
)


def _record(prices: PriceTable | None, usage: TokenUsage | None = None) -> CallRecord:
    record = CallRecord(KEY, started=0.0, ts=1_700_000_000.0, client_ip=None)
    record.prices = prices
    record.usage = usage
    return record


def test_plain_tokens_at_input_and_output_prices() -> None:
    units = CallUnits(input_tokens=1000, output_tokens=500)
    assert cost_of({"input_token": 2.0, "output_token": 10.0}, units) == pytest.approx(
        (1000 * 2.0 + 500 * 10.0) / 1e6
    )


def test_sub_kinds_are_billed_at_their_own_price_only_when_priced() -> None:
    # 1000 prompt tokens of which 300 read from cache and 200 written to it; 400 output
    # tokens of which 100 reasoning.
    units = CallUnits(
        input_tokens=1000, output_tokens=400, cached_tokens=300, cache_write_tokens=200, reasoning_tokens=100
    )
    base = {"input_token": 3.0, "output_token": 15.0}
    assert cost_of(base, units) == pytest.approx((1000 * 3.0 + 400 * 15.0) / 1e6)
    full = {**base, "cached_input_token": 0.3, "cache_write_token": 3.75, "reasoning_token": 20.0}
    expected = (500 * 3.0 + 300 * 0.3 + 200 * 3.75 + 300 * 15.0 + 100 * 20.0) / 1e6
    assert cost_of(full, units) == pytest.approx(expected)


def test_inconsistent_counts_never_give_a_credit() -> None:
    units = CallUnits(input_tokens=10, cached_tokens=50)
    assert cost_of({"input_token": 1.0, "cached_input_token": 0.5}, units) == pytest.approx(50 * 0.5 / 1e6)


@pytest.mark.parametrize(
    ("units", "rates", "expected"),
    [
        (CallUnits(images=3, requests=1), {"image": 40_000.0}, 0.12),
        (CallUnits(pages=10), {"page": 1_500.0}, 0.015),
        (CallUnits(audio_seconds=90.5), {"second": 100.0}, 0.00905),
        (CallUnits(characters=2_000), {"character": 15.0}, 0.03),
        (CallUnits(input_tokens=8), {"input_token": 0.02, "request": 1_000.0}, (8 * 0.02 + 1000) / 1e6),
    ],
)
def test_every_capability_unit_has_a_price(
    units: CallUnits, rates: dict[str, float], expected: float
) -> None:
    assert cost_of(rates, units) == pytest.approx(expected)


def test_units_of_token_usage_carry_cache_writes() -> None:
    usage = TokenUsage(
        input_tokens=30, output_tokens=5, cached_tokens=4, cache_creation_tokens=2, reasoning_tokens=1
    )
    units = CallUnits.of(usage, images=2)
    assert (units.input_tokens, units.cached_tokens, units.cache_write_tokens, units.reasoning_tokens) == (
        30,
        4,
        2,
        1,
    )
    assert (units.images, units.requests) == (2, 1)


def test_price_table_cost_takes_units_or_token_usage() -> None:
    table = PriceTable(
        per_million={"input_token": 2.0, "output_token": 10.0, "request": 500.0}, currency="EUR"
    )
    usage = TokenUsage(input_tokens=7, output_tokens=3)
    assert table.cost(usage) == table.cost(CallUnits.of(usage)) == pytest.approx((14 + 30 + 500) / 1e6)


def test_bill_of_a_priced_call() -> None:
    table = PriceTable(per_million={"input_token": 2.0, "output_token": 10.0}, currency="EUR")
    bill = _record(table, TokenUsage(input_tokens=7, output_tokens=3)).bill()
    assert (bill.cost, bill.currency, bill.unpriced) == (pytest.approx(44 / 1e6), "EUR", False)


def test_bill_of_an_unpriced_call_is_flagged() -> None:
    empty = PriceTable(per_million={}, currency="USD")
    for prices in (None, empty):
        bill = _record(prices, TokenUsage(input_tokens=7, output_tokens=3)).bill()
        assert (bill.cost, bill.unpriced) == (0.0, True)


def test_a_call_refused_before_any_answer_is_free_not_unpriced() -> None:
    bill = _record(None).bill()
    assert (bill.cost, bill.unpriced) == (0.0, False)


def test_media_units_are_billed_without_token_usage() -> None:
    record = _record(PriceTable(per_million={"image": 40_000.0}, currency="USD"))
    record.images = 2
    bill = record.bill()
    assert (bill.cost, bill.unpriced) == (pytest.approx(0.08), False)


@pytest.mark.parametrize(
    ("rates", "missing"),
    [
        ({"input_token": 1.0, "output_token": 2.0}, ()),
        ({"input_token": 1.0}, ("output_token",)),
        ({"request": 5.0}, ()),  # a flat price per call prices every unit
        # Reasoning priced apart, the rest of the output not: 10 plain output tokens unpriced.
        ({"input_token": 1.0, "reasoning_token": 3.0}, ("output_token",)),
        # Every prompt token read from cache, and the cache priced: no input_token needed.
        ({"cached_input_token": 0.1, "output_token": 2.0}, ()),
    ],
)
def test_unpriced_units_are_those_used_without_a_price(
    rates: dict[str, float], missing: tuple[str, ...]
) -> None:
    units = CallUnits(input_tokens=100, cached_tokens=100, output_tokens=50, reasoning_tokens=40)
    assert unpriced_units(rates, units) == missing
    assert unpriced_units({}, CallUnits(images=1)) == ("image",)
    assert unpriced_units({}, CallUnits(pages=0, requests=1)) == ()


def test_a_partly_priced_call_is_flagged_and_billed_for_what_is_priced() -> None:
    bill = _record(PriceTable(per_million={"input_token": 2.0}, currency="USD"), TokenUsage(7, 3)).bill()
    assert (bill.cost, bill.unpriced) == (pytest.approx(14 / 1e6), True)


def test_media_answers_with_tokens_are_priced_by_either_basis() -> None:
    """gpt-image-1 and gpt-4o-transcribe report tokens besides images / seconds: a price
    for either prices the call (both are billed when both are priced)."""
    units = CallUnits(input_tokens=40, output_tokens=10, images=1)
    assert unpriced_units({"image": 40_000.0}, units) == ()
    assert unpriced_units({"input_token": 5.0, "output_token": 40.0}, units) == ()
    assert unpriced_units({"input_token": 5.0}, units) == ("output_token", "image")
    assert cost_of({"image": 40_000.0, "input_token": 5.0, "output_token": 40.0}, units) == pytest.approx(
        (40_000 + 40 * 5 + 10 * 40) / 1e6
    )
    seconds = CallUnits(input_tokens=40, output_tokens=10, audio_seconds=3.0)
    assert unpriced_units({"second": 100.0}, seconds) == ()
    assert unpriced_units({"page": 1.0}, seconds) == ("input_token", "output_token", "second")
