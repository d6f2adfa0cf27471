"""The Grafana dashboard queries only series that exist: Prometheus metrics the tiers
define in their code, and the usage series ingest writes in line protocol (built here
by ingest's own writer). The running-stack test checks the same against live tiers."""

from __future__ import annotations

import re

from .dashboard import dashboard_exprs, metric_names
from .tooling import ROOT

# prometheus_client types and what each adds to the exposed name.
_SUFFIXES = {
    "Counter": ("_total",),
    "CounterMetricFamily": ("_total",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count"),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
}
_DEFINITION = re.compile(r"\b(" + "|".join(_SUFFIXES) + r")\(\s*\"(switchyard_[a-z0-9_]+)\"")
# Exported by every scrape of a prometheus_client default registry, and by the scraper.
_STANDARD = {"up", "process_cpu_seconds_total", "process_resident_memory_bytes"}


def defined_metrics() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "services").rglob("*.py"):
        for kind, name in _DEFINITION.findall(path.read_text()):
            base = name.removesuffix("_total") if kind.startswith("Counter") else name
            names.update(base + suffix for suffix in _SUFFIXES[kind])
    return names


def usage_series() -> set[str]:
    """Series names VictoriaMetrics makes of ingest's line protocol (`<measurement>_<field>`)."""
    from switchyard_common.usage_rollups import GROUP_COLUMNS, SUM_COLUMNS, RollupRow
    from switchyard_ingest.timeseries import rollup_lines

    key = (1_700_000_040, *(f"v{i}" for i in range(1, len(GROUP_COLUMNS))))
    body = rollup_lines([RollupRow(key=key, sums=[1.0] * len(SUM_COLUMNS))]).decode()  # type: ignore[arg-type]
    names: set[str] = set()
    for line in body.splitlines():
        series, fields, _stamp = line.rsplit(" ", 2)
        measurement = series.split(",", 1)[0]
        names.update(f"{measurement}_{field.split('=', 1)[0]}" for field in fields.split(","))
    return names


def test_dashboard_has_usage_latency_and_error_panels() -> None:
    exprs = dashboard_exprs()
    names = metric_names(exprs)
    assert "switchyard_dataplane_request_seconds_bucket" in names  # latency
    assert "switchyard_dataplane_time_to_first_byte_seconds_bucket" in names
    assert any('status=~"5..' in e or 'status=~"4..|5..' in e for e in exprs)  # errors
    assert "switchyard_dataplane_upstream_errors_total" in names
    assert {"switchyard_usage_requests", "switchyard_usage_cost", "switchyard_usage_input_tokens"} <= names


def test_dashboard_names_only_metrics_the_code_exports() -> None:
    names = metric_names(dashboard_exprs())
    known = defined_metrics() | usage_series() | _STANDARD
    assert not names - known, f"unknown metrics in the dashboard: {sorted(names - known)}"


def test_metric_extraction_sees_through_functions_and_selectors() -> None:
    # The check above is only as good as this parsing.
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(foo_bucket{status=~"5.."}[$__rate_interval])))'
        " / bar"
    )
    assert metric_names([expr]) == {"foo_bucket", "bar"}
    assert "switchyard_usage_requests" in usage_series()
    assert "switchyard_dataplane_requests_total" in defined_metrics()
    assert "switchyard_dataplane_requests" not in defined_metrics()
