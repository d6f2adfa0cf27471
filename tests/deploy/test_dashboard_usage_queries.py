"""The dashboard's usage panels against a real VictoriaMetrics holding what ingest writes.

Ingest writes a rollup row's new *totals* each time a batch touches it, stamped minute +
revision ms (ADR 016), so one minute has several points. A panel that sums every point
(`sum_over_time(x[$__interval])`) over-counts; each must take every minute's last point.
The points here come from ingest's own line-protocol writer.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator

import pytest
from switchyard_common.usage_rollups import GROUP_COLUMNS, SUM_COLUMNS, RollupRow
from switchyard_ingest.timeseries import rollup_lines

from tests.support.throwaway import ThrowawayVictoriaMetrics

from .dashboard import dashboard_exprs, render_expr

# Every field of a minute's row holds the same running total; the final totals of
# the two minutes add up to FINAL for every series, bucket included.
REVISIONS = {3: [1.0, 3.0, 4.0], 2: [2.0]}  # minutes ago -> totals of revisions 1, 2, ...
FINAL = 4.0 + 2.0


@pytest.fixture(scope="module")
def vm() -> Iterator[ThrowawayVictoriaMetrics]:
    if shutil.which("victoria-metrics") is None and not os.path.exists("/usr/bin/victoria-metrics"):
        message = "victoria-metrics is not installed (scripts/install_victoria_metrics.sh)"
        if os.environ.get("SWITCHYARD_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = ThrowawayVictoriaMetrics()
    server.start()
    try:
        yield server
    finally:
        server.close()


def _usage_exprs() -> list[str]:
    exprs = [e for e in dashboard_exprs() if "switchyard_usage" in e]
    assert len(exprs) >= 6, exprs  # requests, tokens x2, cost x2, errors, latency
    return exprs


def _write_revisions(vm: ThrowawayVictoriaMetrics) -> float:
    """Every revision of two minutes' rollup row, as ingest writes them; returns the
    instant to query at (the end of the later minute)."""
    now_minute = int(time.time()) // 60 * 60
    group = ("acme", "org-1", "key-1", "chat", "mock", "llm", "200", "USD")
    assert len(group) == len(GROUP_COLUMNS) - 1
    rows = [
        RollupRow(key=(now_minute - ago * 60, *group), sums=[total] * len(SUM_COLUMNS), revision=rev)  # type: ignore[arg-type]
        for ago, totals in REVISIONS.items()
        for rev, total in enumerate(totals, start=1)
    ]
    request = urllib.request.Request(
        f"{vm.url}/write?db=switchyard&precision=ns", data=rollup_lines(rows), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    return float(now_minute)


def test_usage_panels_count_each_minute_once(vm: ThrowawayVictoriaMetrics) -> None:
    at = _write_revisions(vm)
    # Lines with several points per minute must be there before judging the queries.
    deadline = time.monotonic() + 20
    while vm.scalar("count_over_time(switchyard_usage_requests[10m])", at) < 4:
        assert time.monotonic() < deadline, "VictoriaMetrics never showed the written points"
        time.sleep(0.2)
    for expr in _usage_exprs():
        rendered = render_expr(expr, interval="10m", rate_interval="10m")
        # histogram_quantile of equal buckets says nothing: check the buckets it reads.
        inner = re.fullmatch(r"histogram_quantile\([0-9.]+, (.*)\)", rendered)
        series = vm.query(inner.group(1) if inner else rendered, at)
        assert series, f"no data for {expr}"
        values = {float(s["value"][1]) for s in series}
        assert values == {FINAL}, f"{expr} gives {values}, the rollups say {FINAL}"
