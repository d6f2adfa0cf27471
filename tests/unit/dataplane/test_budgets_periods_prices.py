"""Pure budget pieces: UTC calendar periods, key names, worst-case reservations, price
schedules (effective_from) and the rate-limit header format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from switchyard_common.budget_state import budget_key, period_bounds, period_id, usage_of
from switchyard_dataplane.admission.budgets import (
    INPUT_MARGIN,
    INPUT_SLACK,
    requested_output_tokens,
    reservation_prices,
    worst_case_cost,
)
from switchyard_dataplane.admission.headers import format_duration
from switchyard_dataplane.admission.rules import BudgetRule
from switchyard_dataplane.index import build_index

from tests.unit.dataplane.conftest import SECRET, make_snapshot


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_calendar_periods_are_utc_and_weeks_start_on_monday() -> None:
    now = ts(2026, 12, 31, 23, 59, 59)  # a Thursday
    assert period_bounds("day", now) == (datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert period_bounds("week", now) == (
        datetime(2026, 12, 28, tzinfo=UTC),
        datetime(2027, 1, 4, tzinfo=UTC),
    )
    assert period_bounds("month", now) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("total", now) == (None, None)
    assert period_id("month", now) == "202612" and period_id("week", now) == "20261228"
    assert period_id("day", ts(2027, 1, 1)) == "20270101"
    with pytest.raises(ValueError, match="unknown budget period"):
        period_bounds("year", now)


def test_budget_keys_change_with_the_period_and_currency() -> None:
    a = budget_key("sy:", "key", "k1", "day", "usd", ts(2026, 5, 1, 10))
    assert a == "sy:bud:key:k1:day:20260501:USD"
    assert budget_key("sy:", "key", "k1", "day", "USD", ts(2026, 5, 2, 0)) != a
    assert budget_key("sy:", "org", "o1", "total", "EUR", 0) == "sy:bud:org:o1:total:all:EUR"


def test_usage_reports_remaining_never_below_zero() -> None:
    usage = usage_of(BudgetRule(1.0, "USD", "day"), b"900000000", "200000000", ts(2026, 5, 1))
    assert usage.spent == 0.9 and usage.reserved == 0.2 and usage.remaining == 0.0
    assert usage.as_dict()["period_start"] == "2026-05-01T00:00:00+00:00"


def test_worst_case_uses_the_dearest_rate_of_each_side_plus_margin() -> None:
    rates = {"input_token": 1.0, "cached_input_token": 0.1, "cache_write_token": 1.25, "output_token": 4.0}
    cost = worst_case_cost(rates, 100, 50)
    expected_input = (int(100 * INPUT_MARGIN) + INPUT_SLACK) * 1.25
    assert cost == pytest.approx((expected_input + 50 * 4.0) / 1e6)
    assert worst_case_cost(
        {"output_token": 2.0, "reasoning_token": 3.0, "request": 7.0}, 0, 10
    ) == pytest.approx((30 + 7) / 1e6)


def test_output_allowance_is_the_callers_cap_else_the_models() -> None:
    index = build_index(make_snapshot(), secret_key=SECRET, env={})
    route = index.models["chat"]
    assert requested_output_tokens({"max_tokens": 77}, route) == 77
    assert requested_output_tokens({"max_completion_tokens": 12, "max_tokens": 99}, route) == 12
    assert requested_output_tokens({"max_tokens": True}, route) == route.max_output_tokens == 4096


def test_price_schedules_pick_the_newest_price_in_effect() -> None:
    snap = make_snapshot()
    may = int(ts(2026, 5, 1) * 1000)
    june = int(ts(2026, 6, 1) * 1000)
    snap.prices.add(model="chat", unit="input_token", per_million=3.0, effective_from_ms=may)
    snap.prices.add(model="chat", unit="output_token", per_million=20.0, effective_from_ms=june)
    snap.prices.add(model="later", unit="input_token", per_million=1.0, effective_from_ms=june)
    index = build_index(snap, secret_key=SECRET, env={})
    assert dict(index.prices_for("chat", ts(2026, 4, 30)).per_million) == {
        "input_token": 2.0,
        "output_token": 10.0,
    }
    assert dict(index.prices_for("chat", ts(2026, 5, 15)).per_million) == {
        "input_token": 3.0,
        "output_token": 10.0,
    }
    assert dict(index.prices_for("chat", ts(2026, 7, 1)).per_million) == {
        "input_token": 3.0,
        "output_token": 20.0,
    }
    assert index.price_at("later", ts(2026, 5, 31)) is None
    assert index.price_at("later", ts(2026, 6, 1)) is not None


def test_reservations_use_the_dearest_target_price_when_the_model_has_none() -> None:
    snap = make_snapshot(
        base_urls={"up": "http://a.test/v1", "up2": "http://b.test/v1"},
        targets=[("up", "cheap", 0), ("up2", "dear", 1)],
    )
    del snap.prices[:]
    snap.prices.add(model="up/cheap", unit="output_token", per_million=1.0)
    snap.prices.add(model="up2/dear", unit="output_token", per_million=9.0)
    index = build_index(snap, secret_key=SECRET, env={})
    table = reservation_prices(index, index.models["chat"], 0.0, 10, 10)
    assert table is not None and table.per_million["output_token"] == 9.0
    assert reservation_prices(index, index.models["echo"], 0.0, 10, 10) is None


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (20, "20ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (360_000, "6m0s"),
        (61_250, "1m1.25s"),
        (3_723_000, "1h2m3s"),
    ],
)
def test_durations_are_written_as_openai_does(ms: int, text: str) -> None:
    assert format_duration(ms) == text
