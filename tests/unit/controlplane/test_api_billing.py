"""The usage and billing API over the rollups: totals, time series, billing summary,
CSV export (on the migrated SQLite database of the embedded mode)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from switchyard_common.usage import UsageEvent
from switchyard_common.usage_rollups import aggregate, usage_rollups_minute

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
DOC = {
    "organizations": [{"name": "acme"}, {"name": "globex"}],
    "providers": [{"slug": "mock", "api_format": "mock"}],
    "models": [{"name": "chat", "targets": [{"provider": "mock", "model": "echo"}]}],
    "keys": [{"name": "svc", "org": "acme"}],
}


def _event(n: int, at: timedelta, **overrides: object) -> UsageEvent:
    values: dict[str, object] = {
        "id": f"e{n}",
        "ts": (T0 + at).timestamp(),
        "org": "acme",
        "org_id": "org-1",
        "key_id": "key-1",
        "capability": "llm",
        "model": "chat",
        "provider": "mock",
        "upstream_model": "echo",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": 0.5,
        "latency_ms": 80.0,
    }
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


@pytest.fixture
async def seeded(admin: httpx.AsyncClient, engine: Engine) -> dict[str, str]:
    applied = (await admin.post("/api/v1/config/apply", json={"document": DOC})).json()
    keys = (await admin.get("/api/v1/keys")).json()
    key_id = next(k["id"] for k in keys["data"] if k["name"] == "svc")
    assert applied["changed"]
    events = [
        _event(1, timedelta(seconds=1), key_id=key_id),
        _event(2, timedelta(seconds=2), key_id=key_id, status=429, cost=0.0, input_tokens=0, output_tokens=0),
        _event(3, timedelta(hours=1), key_id=key_id, model="embed", capability="embedding", cost=0.25),
        _event(4, timedelta(hours=1, minutes=5), model="eu-chat", currency="EUR", cost=1.5),
        _event(5, timedelta(hours=2), model="free", cost=0.0, unpriced=True),
        _event(6, timedelta(days=40), cost=9.0),  # next month
        _event(7, timedelta(hours=1), org="globex", org_id="org-2", cost=3.0),
    ]
    with engine.begin() as conn:
        conn.execute(usage_rollups_minute.insert(), [row.as_row() for row in aggregate(events)])
    return {"key_id": key_id}


WINDOW = {"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat()}


async def test_totals_default_to_per_model(admin: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    body = (await admin.get("/api/v1/usage", params={**WINDOW, "org": "acme"})).json()
    assert body["group_by"] == "model" and body["filters"] == {"org": "acme"}
    rows = {(r["model"], r["currency"]): r for r in body["rows"]}
    assert set(rows) == {("chat", "USD"), ("embed", "USD"), ("eu-chat", "EUR"), ("free", "USD")}
    assert (rows[("chat", "USD")]["requests"], rows[("chat", "USD")]["errors"]) == (2, 1)
    assert rows[("free", "USD")]["unpriced_requests"] == 1


async def test_totals_by_several_groups_with_key_names(
    admin: httpx.AsyncClient, seeded: dict[str, str]
) -> None:
    response = await admin.get(
        "/api/v1/usage", params=[*WINDOW.items(), ("group_by", "org,key"), ("group_by", "capability")]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == "org,key,capability"
    mine = [r for r in body["rows"] if r["key_id"] == seeded["key_id"]]
    assert {(r["org"], r["key_name"], r["capability"], r["requests"]) for r in mine} == {
        ("acme", "svc", "llm", 2),
        ("acme", "svc", "embedding", 1),
    }
    unknown = [r for r in body["rows"] if r["key_id"] == "key-1"]
    assert unknown and all(r["key_name"] is None for r in unknown)


async def test_bad_group_and_range_are_refused(admin: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    bad = await admin.get("/api/v1/usage", params={**WINDOW, "group_by": "planet"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_group_by"
    reversed_range = await admin.get("/api/v1/usage", params={"start": WINDOW["end"], "end": WINDOW["start"]})
    assert reversed_range.status_code == 400
    too_fine = await admin.get(
        "/api/v1/usage/timeseries",
        params={
            "start": T0.isoformat(),
            "end": (T0 + timedelta(days=30)).isoformat(),
            "granularity": "minute",
        },
    )
    assert too_fine.status_code == 400 and too_fine.json()["error"]["code"] == "too_many_buckets"


async def test_timeseries_per_hour(admin: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    response = await admin.get(
        "/api/v1/usage/timeseries",
        params={**WINDOW, "granularity": "hour", "group_by": "org", "capability": "llm"},
    )
    body = response.json()
    assert body["granularity"] == "hour"
    got = [(r["bucket"], r["org"], r["currency"], r["requests"]) for r in body["rows"]]
    hour = lambda n: (T0 + timedelta(hours=n)).isoformat()  # noqa: E731
    assert got == [
        (hour(0), "acme", "USD", 2),
        (hour(1), "acme", "EUR", 1),
        (hour(1), "globex", "USD", 1),
        (hour(2), "acme", "USD", 1),
    ]


async def test_usage_as_csv(admin: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    by_param = await admin.get("/api/v1/usage", params={**WINDOW, "format": "csv", "group_by": "org"})
    by_accept = await admin.get(
        "/api/v1/usage", params={**WINDOW, "group_by": "org"}, headers={"Accept": "text/csv"}
    )
    for response in (by_param, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
    assert by_param.text == by_accept.text
    rows = list(csv.DictReader(io.StringIO(by_param.text)))
    assert [(r["org"], r["currency"], r["requests"], r["cost"]) for r in rows] == [
        ("acme", "EUR", "1", "1.5"),
        ("acme", "USD", "4", "0.75"),
        ("globex", "USD", "1", "3.0"),
    ]
    series = await admin.get(
        "/api/v1/usage/timeseries", params={**WINDOW, "format": "csv", "granularity": "day"}
    )
    assert series.text.splitlines()[0].startswith("bucket,currency,requests,")


async def test_billing_summary_for_a_month(admin: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    response = await admin.get("/api/v1/billing/summary", params={"org": "acme", "period": "2026-11"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["org"], body["period"]) == ("acme", "2026-11")
    assert (body["start"], body["end"]) == ("2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")
    lines = {(line["model"], line["currency"]): line["cost"] for line in body["lines"]}
    assert lines == {
        ("chat", "USD"): 0.5,
        ("embed", "USD"): 0.25,
        ("eu-chat", "EUR"): 1.5,
        ("free", "USD"): 0.0,
    }
    assert [(t["currency"], t["cost"], t["requests"], t["unpriced_requests"]) for t in body["totals"]] == [
        ("EUR", 1.5, 1, 0),
        ("USD", 0.75, 4, 1),
    ]
    december = (
        await admin.get("/api/v1/billing/summary", params={"org": "acme", "period": "2026-12"})
    ).json()
    assert [(t["currency"], t["cost"]) for t in december["totals"]] == [("USD", 9.0)]


async def test_billing_summary_as_csv(admin: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    response = await admin.get(
        "/api/v1/billing/summary", params={"org": "acme", "period": "2026-11"}, headers={"Accept": "text/csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert "billing-acme-2026-11.csv" in response.headers["content-disposition"]
    rows = [
        (r["line"], r["model"], r["currency"], r["cost"]) for r in csv.DictReader(io.StringIO(response.text))
    ]
    assert rows == [
        ("model", "chat", "USD", "0.5"),
        ("model", "embed", "USD", "0.25"),
        ("model", "eu-chat", "EUR", "1.5"),
        ("model", "free", "USD", "0.0"),
        ("total", "", "EUR", "1.5"),
        ("total", "", "USD", "0.75"),
    ]


async def test_billing_summary_refusals(admin: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    unknown = await admin.get("/api/v1/billing/summary", params={"org": "nobody", "period": "2026-11"})
    assert unknown.status_code == 404
    bad_period = await admin.get("/api/v1/billing/summary", params={"org": "acme", "period": "2026-13"})
    assert bad_period.status_code == 400 and bad_period.json()["error"]["code"] == "invalid_period"
    both = await admin.get("/api/v1/billing/summary", params={"org": "acme", "period": "2026-11", **WINDOW})
    assert both.status_code == 400
    ranged = await admin.get("/api/v1/billing/summary", params={"org": "acme", **WINDOW})
    assert [t["currency"] for t in ranged.json()["totals"]] == ["EUR", "USD"]


async def test_reports_need_an_admin(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/usage", "/api/v1/usage/timeseries", "/api/v1/billing/summary?org=acme"):
        assert (await client.get(path)).status_code == 401
