"""Billing end to end through the real processes (data plane, ingest, control plane on
Postgres + NATS): priced, target-priced, unpriced (flagged and refused) calls and a
client that disconnects mid-stream; the usage API, the billing summary and the
`switchyard usage` command all report exactly what the ledger holds, the key's budget
has spent exactly the billed cost, and `apply` warns about the unpriced model."""

from __future__ import annotations

import csv
import io
import json
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL, unique_name
from tests.support.stack import APP_KEY, NARROW_KEY, SplitStack, split_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _config(mock_port: int, closed_port: int) -> str:
    return textwrap.dedent(
        f"""
        organizations:
          - name: acme
          - name: strict
            policy: {{unpriced: refuse}}
        providers:
          - slug: upstream
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: sk-upstream-secret
        models:
          - name: gpt-test
            targets: [{{provider: upstream, model: echo-model}}]
          - name: free-model
            targets: [{{provider: upstream, model: echo-free}}]
          - name: by-target
            targets: [{{provider: upstream, model: echo-target}}]
        prices:
          - {{model: gpt-test, unit: input_token, per_million: 1000.0}}
          - {{model: gpt-test, unit: output_token, per_million: 2000.0}}
          - {{model: upstream/echo-target, unit: input_token, per_million: 4000.0, currency: EUR}}
          - {{model: upstream/echo-target, unit: output_token, per_million: 8000.0, currency: EUR}}
        keys:
          - name: app
            org: acme
            value_env: APP_KEY
            limits: {{budget: {{amount: 1000, currency: USD, period: month}}}}
          - name: strict-app
            org: strict
            value_env: NARROW_KEY
        """
    )


def _forget_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[SplitStack]:
    # The control plane reads the data planes' budget use from the same Redis and prefix.
    redis = {"SWITCHYARD_REDIS_URL": REDIS_URL, "SWITCHYARD_REDIS_PREFIX": f"{unique_name('bill')}:"}
    try:
        with split_stack(tmp_path_factory.mktemp("billing"), config=_config, extra_env=redis) as running:
            yield running
    finally:
        _forget_redis(redis["SWITCHYARD_REDIS_PREFIX"])


def _chat(stack: SplitStack, model: str, text: str, key: str = APP_KEY, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.dp_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
        timeout=30,
    )


def _ledger(stack: SplitStack) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(stack.pg_url, row_factory=dict_row) as conn:
        return list(conn.execute("SELECT * FROM usage_events ORDER BY ts"))


def _wait_for_rows(stack: SplitStack, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _ledger(stack)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def _disconnect_mid_stream(stack: SplitStack) -> str:
    """Streams a long answer, reads a few chunks and hangs up; returns what it read."""
    words = " ".join(f"word{n}" for n in range(400))  # the mock echoes one word per 5 ms
    read = []
    with httpx.stream(
        "POST",
        f"{stack.dp_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {APP_KEY}"},
        json={"model": "gpt-test", "messages": [{"role": "user", "content": words}], "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            read.append(chunk.decode())
            if len(read) >= 5:
                break
    return "".join(read)


@pytest.fixture(scope="module")
def calls(stack: SplitStack) -> list[dict[str, Any]]:
    for n in range(3):
        assert _chat(stack, "gpt-test", f"hello number {n}").status_code == 200
    streamed = _chat(stack, "gpt-test", "stream me", stream=True, stream_options={"include_usage": True})
    assert streamed.status_code == 200
    assert _chat(stack, "free-model", "nobody prices me").status_code == 200
    assert _chat(stack, "by-target", "the provider's price").status_code == 200
    refused = _chat(stack, "free-model", "refuse me", key=NARROW_KEY)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_unpriced"
    _disconnect_mid_stream(stack)
    rows = _wait_for_rows(stack, 8)
    assert len(rows) == 8, [(r["model"], r["status"]) for r in rows]
    time.sleep(0.5)  # nothing more arrives
    assert len(_ledger(stack)) == 8
    return rows


def _api(stack: SplitStack, path: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.admin_token()}"}
    return httpx.get(f"{stack.cp_url}{path}", params=params, headers=headers, timeout=30)


def _ledger_totals(rows: list[dict[str, Any]], org: str) -> dict[tuple[str, str], tuple[int, float]]:
    totals: dict[tuple[str, str], tuple[int, float]] = {}
    for row in rows:
        if row["org"] != org:
            continue
        count, cost = totals.get((row["model"], row["currency"]), (0, 0.0))
        totals[(row["model"], row["currency"])] = (count + 1, cost + row["cost"])
    return totals


def test_events_carry_the_bill(calls: list[dict[str, Any]]) -> None:
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in calls:
        by_model.setdefault(row["model"], []).append(row)
    for row in by_model["gpt-test"]:
        expected = (row["input_tokens"] * 1000.0 + row["output_tokens"] * 2000.0) / 1e6
        assert row["cost"] == pytest.approx(expected) and row["cost"] > 0
        assert (row["currency"], row["unpriced"], row["key_name"]) == ("USD", False, "app")
    [target_priced] = by_model["by-target"]
    assert target_priced["currency"] == "EUR"
    assert target_priced["cost"] == pytest.approx(
        (target_priced["input_tokens"] * 4000.0 + target_priced["output_tokens"] * 8000.0) / 1e6
    )
    flagged, refused = sorted(by_model["free-model"], key=lambda r: r["status"])
    assert (flagged["status"], flagged["unpriced"], flagged["cost"]) == (200, True, 0.0)
    assert (refused["status"], refused["org"], refused["refused_by"]) == (403, "strict", "org.unpriced")


def test_client_disconnect_is_billed_for_what_was_produced(calls: list[dict[str, Any]]) -> None:
    [gone] = [row for row in calls if row["status"] == 499]
    assert (gone["client_disconnect"], gone["error_type"], gone["tokens_estimated"]) == (
        True,
        "client_closed",
        True,
    )
    # The prompt (400 words) counted locally; the output only what was streamed before
    # the gateway stopped reading, far less than the whole echo.
    assert gone["input_tokens"] >= 400
    assert 0 < gone["output_tokens"] < 400
    assert gone["cost"] == pytest.approx(
        (gone["input_tokens"] * 1000.0 + gone["output_tokens"] * 2000.0) / 1e6
    )


def test_usage_api_equals_the_ledger(stack: SplitStack, calls: list[dict[str, Any]]) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    body = _api(stack, "/api/v1/usage", group_by="model", org="acme").json()
    got = {(r["model"], r["currency"]): (r["requests"], r["cost"]) for r in body["rows"]}
    expected = _ledger_totals(calls, "acme")
    assert got.keys() == expected.keys()
    for group, (count, cost) in expected.items():
        assert got[group][0] == count and got[group][1] == pytest.approx(cost)
    series = _api(stack, "/api/v1/usage/timeseries", granularity="minute", group_by="org").json()
    assert sum(r["requests"] for r in series["rows"]) == len(calls)

    summary = _api(stack, "/api/v1/billing/summary", org="acme", period=month).json()
    assert {(line["model"], line["currency"]): line["requests"] for line in summary["lines"]} == {
        group: count for group, (count, _) in expected.items()
    }
    usd = next(t for t in summary["totals"] if t["currency"] == "USD")
    assert usd["cost"] == pytest.approx(sum(c for (_, cur), (_, c) in expected.items() if cur == "USD"))
    assert usd["unpriced_requests"] == 1


def test_cli_mirrors_the_api(stack: SplitStack, calls: list[dict[str, Any]]) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    billing = json.loads(
        stack.cli("usage", "billing", "--org", "acme", "--period", month, "-o", "json").stdout
    )
    assert billing == _api(stack, "/api/v1/billing/summary", org="acme", period=month).json()

    exported = stack.cli("usage", "billing", "--org", "acme", "--period", month, "-o", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    expected = _ledger_totals(calls, "acme")
    lines = {(r["model"], r["currency"]): float(r["cost"]) for r in rows if r["line"] == "model"}
    assert lines.keys() == expected.keys()
    assert all(lines[group] == pytest.approx(cost) for group, (_, cost) in expected.items())

    table = stack.cli("usage", "--group-by", "model", "--granularity", "hour", "--since", "24h").stdout
    assert "gpt-test" in table and "by-target" in table and "BUCKET" in table
    by_org = json.loads(stack.cli("usage", "--group-by", "org,key", "-o", "json").stdout)
    apps = {(r["org"], r["key_name"]) for r in by_org["rows"]}
    assert apps == {("acme", "app"), ("strict", "strict-app")}

    # Totals and the time series, as JSON and CSV: the API's own answers over one range.
    now = datetime.now(UTC)
    span = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat()}
    flags = ["--start", span["start"], "--end", span["end"], "--group-by", "model"]
    for path, extra in (("/api/v1/usage", []), ("/api/v1/usage/timeseries", ["--granularity", "minute"])):
        params = {**span, "group_by": "model", **({"granularity": "minute"} if extra else {})}
        api = _api(stack, path, **params).json()
        assert json.loads(stack.cli("usage", *flags, *extra, "-o", "json").stdout) == api
        assert sum(r["requests"] for r in api["rows"]) == len(calls)
        shown = list(csv.DictReader(io.StringIO(stack.cli("usage", *flags, *extra, "-o", "csv").stdout)))
        assert shown == list(csv.DictReader(io.StringIO(_api(stack, path, **params, format="csv").text)))
        assert sorted((r["model"], int(r["requests"])) for r in shown) == sorted(
            (r["model"], r["requests"]) for r in api["rows"]
        )


def test_budget_spend_is_the_billed_cost(stack: SplitStack, calls: list[dict[str, Any]]) -> None:
    """Budget settlement and billing use one number: the cost the data plane computed.
    `app` has a USD budget; its calls include a stream, a flagged unpriced call, a call
    billed in EUR (another currency: never reaches a USD budget) and a client that hung
    up mid-stream (settled for what was produced)."""
    month = datetime.now(UTC).strftime("%Y-%m")
    billed = sum(r["cost"] for r in calls if r["key_name"] == "app" and r["currency"] == "USD")
    assert billed > 0
    summary = _api(stack, "/api/v1/billing/summary", org="acme", period=month).json()
    assert next(t for t in summary["totals"] if t["currency"] == "USD")["cost"] == pytest.approx(billed)
    keys = _api(stack, "/api/v1/keys").json()["data"]
    app_id = next(k["id"] for k in keys if k["name"] == "app")
    deadline = time.monotonic() + 10  # settlement runs just after the answer
    while True:
        budget = _api(stack, f"/api/v1/keys/{app_id}/budget").json()
        assert budget["source"] == "redis", budget
        [use] = budget["budgets"]
        if use["reserved"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (use["currency"], use["reserved"]) == ("USD", 0)
    # Redis keeps nano-units: equal to the ledger's float sum to well below a cent.
    assert use["spent"] == pytest.approx(billed, rel=1e-6)


def test_apply_warns_about_models_billed_at_zero(stack: SplitStack) -> None:
    """The price-table check: `free-model` has no price, nor has its target; `by-target`
    is covered by its target's price."""
    applied = stack.cli("apply", "-f", str(stack.root / "switchyard.yaml"))
    warnings = [line for line in applied.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, applied.stderr
    assert "'free-model'" in warnings[0] and "upstream/echo-free" in warnings[0]
    assert "billed at 0" in warnings[0]
    check = _api(stack, "/api/v1/prices/check").json()
    assert [u["model"] for u in check["unpriced"]] == ["free-model"] and check["ok"] is False
