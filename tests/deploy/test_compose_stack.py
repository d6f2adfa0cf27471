"""The compose stack's tiers, run as real processes with the environment compose gives
them (tests/deploy/compose_stack.py), taken through the README's first-call walkthrough;
then the Grafana dashboard's queries checked against what the tiers really export."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .compose_stack import LocalStack, chat, local_stack
from .dashboard import dashboard_exprs, metric_names, render_expr
from .tooling import COMPOSE_DIR, by_kind, compose_model, find_tools, helm_template, load_docs

pytestmark = pytest.mark.timeout(240)

CONFIG = COMPOSE_DIR / "config" / "switchyard.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[LocalStack]:
    model = compose_model(find_tools())
    with local_stack(model, tmp_path_factory.mktemp("compose-stack")) as running:
        yield running


@pytest.fixture(scope="module")
def first_call(stack: LocalStack) -> dict[str, Any]:
    """README: apply the starter config, create a key, call `mock-chat` with it."""
    applied = stack.cli("apply", "-f", str(CONFIG))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    created = stack.cli("keys", "create", "--name", "first-app", "--org", "demo", "--output", "json")
    assert created.returncode == 0, created.stdout + created.stderr
    key = json.loads(created.stdout)["key"]
    # The compose healthcheck of the data plane passes once the snapshot arrived.
    stack.wait_healthy("dataplane", timeout=30)
    response = chat(stack, key, "mock-chat")
    return {"key": key, "response": response}


def test_readme_walkthrough_reaches_a_first_call(stack: LocalStack, first_call: dict[str, Any]) -> None:
    response = first_call["response"]
    assert first_call["key"].startswith("gk_")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]
    # Re-applying the file is a no-op (the README says edit and re-apply).
    again = stack.cli("apply", "-f", str(CONFIG))
    assert again.returncode == 0 and "no changes" in again.stdout.lower(), again.stdout


def test_the_call_is_ingested_and_reported_by_the_usage_command(
    stack: LocalStack, first_call: dict[str, Any]
) -> None:
    assert first_call["response"].status_code == 200
    deadline = time.monotonic() + 30
    while True:
        usage = stack.cli("usage", "--since", "1h", "--group-by", "model", "--output", "json")
        assert usage.returncode == 0, usage.stderr
        rows = {row["model"]: row for row in json.loads(usage.stdout).get("rows", [])}
        if rows.get("mock-chat", {}).get("requests") == stack.calls:
            break
        assert time.monotonic() < deadline, f"usage never showed the call: {usage.stdout}"
        time.sleep(0.5)
    assert rows["mock-chat"]["cost"] > 0, "the starter config prices mock-chat"


def _exported(stack: LocalStack) -> set[str]:
    names: set[str] = set()
    for tier in ("controlplane", "dataplane", "ingest"):
        text = httpx.get(f"{stack.url(tier)}/metrics", timeout=10).text
        for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
            names.add(family)
            if kind == "counter":
                names.add(family + "_total")
            elif kind == "histogram":
                names.update(family + s for s in ("_bucket", "_sum", "_count"))
    return names


def test_dashboard_scrape_metrics_are_exported_by_the_running_tiers(
    stack: LocalStack, first_call: dict[str, Any]
) -> None:
    assert first_call["response"].status_code == 200
    wanted = {name for name in metric_names(dashboard_exprs()) if not name.startswith("switchyard_usage")}
    # `up` and scrape_* are made by the scraper itself, not by the tiers.
    wanted -= {"up"}
    missing = wanted - _exported(stack)
    assert not missing, f"dashboard queries metrics no tier exports: {sorted(missing)}"


def _vm_query(vm_url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params: dict[str, str] = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    response = httpx.get(f"{vm_url}/api/v1/query", params=params, timeout=10)
    assert response.status_code == 200, (expr, response.text)
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_dashboard_usage_and_traffic_panels_show_the_call_in_victoriametrics(
    stack: LocalStack, first_call: dict[str, Any]
) -> None:
    if stack.vm_url is None:
        message = "victoria-metrics is not installed (apt-get install victoria-metrics)"
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    assert first_call["response"].status_code == 200
    # Panels that must show the one call: usage from ingest's line protocol, traffic
    # from the data plane's scraped /metrics.
    must_show = {
        "sum by (model) (sum_over_time(last_over_time(switchyard_usage_requests[1m])[$__interval:1m]))": {
            "model": "mock-chat"
        },
        "sum(rate(switchyard_dataplane_requests_total[$__rate_interval]))": {},
        'sum by (job) (up{job=~"switchyard-.*"})': {},
    }
    exprs = set(dashboard_exprs())
    assert set(must_show) <= exprs, "the dashboard no longer has these queries"
    # A rate needs the counter seen before and after a call: scrape (1 s), call again.
    time.sleep(1.5)
    assert chat(stack, first_call["key"], "mock-chat").status_code == 200
    deadline = time.monotonic() + 30
    pending = dict(must_show)
    # Usage panels count whole minutes (each minute's last point): ask at the end of the
    # current one. There the requests panel must equal the calls made, however many
    # points (one per ingest batch) each minute holds.
    minute_end = (time.time() // 60 + 1) * 60
    while pending:
        for expr, labels in list(pending.items()):
            at = minute_end if "switchyard_usage" in expr else None
            series = _vm_query(stack.vm_url, render_expr(expr, interval="10m", rate_interval="5m"), at)
            if any(labels.items() <= s["metric"].items() and float(s["value"][1]) > 0 for s in series):
                del pending[expr]
        if pending and time.monotonic() > deadline:
            pytest.fail(f"no data for {sorted(pending)} in VictoriaMetrics")
        time.sleep(0.5)
    requests = next(e for e in must_show if "switchyard_usage_requests" in e)
    deadline = time.monotonic() + 30
    while True:
        series = _vm_query(
            stack.vm_url, render_expr(requests, interval="10m", rate_interval="5m"), minute_end
        )
        counted = sum(float(s["value"][1]) for s in series if s["metric"].get("model") == "mock-chat")
        if counted == stack.calls or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counted == stack.calls, f"the requests panel counts {counted} calls, {stack.calls} were made"
    ups = _vm_query(stack.vm_url, 'sum by (job) (up{job=~"switchyard-.*"})')
    assert {s["metric"]["job"] for s in ups} == {
        "switchyard-controlplane",
        "switchyard-dataplane",
        "switchyard-ingest",
    }
    # Every dashboard query and every alert of the chart's PrometheusRule parses (a
    # typo answers 422).
    for expr in exprs:
        _vm_query(stack.vm_url, render_expr(expr, interval="10m", rate_interval="5m"))
    tools = find_tools()
    rendered = load_docs(helm_template(tools, "--set", "metrics.prometheusRule.enabled=true"))
    (rule,) = by_kind(rendered, "PrometheusRule").values()
    for alert in rule["spec"]["groups"][0]["rules"]:
        _vm_query(stack.vm_url, alert["expr"])


def _required() -> bool:
    import os

    return os.environ.get("SWITCHYARD_REQUIRE_DEPLOY_TOOLS") == "1"
