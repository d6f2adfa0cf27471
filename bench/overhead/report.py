"""Turn the measurements into the overhead table, the target checks and the files
written to bench/results/<timestamp>/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenarios import GOVERNANCE_BASELINE, SCENARIOS, Scenario

# results[scenario][concurrency][target name] -> measurement dict. A scenario's `direct`
# entry is its baseline: the mock called directly in the protocol its upstream speaks.
Results = dict[str, dict[int, dict[str, dict[str, Any]]]]

LATENCY_TARGET_MS = 2.0
THROUGHPUT_VS_PORTKEY = 2.0


@dataclass(frozen=True)
class Metric:
    label: str
    key: str
    is_rate: bool


NON_STREAM_LATENCY = (Metric("p50 ms", "lat_p50_ms", False), Metric("p99 ms", "lat_p99_ms", False))
STREAM_LATENCY = (
    Metric("TTFB p50 ms", "ttfb_p50_ms", False),
    Metric("TTFB p99 ms", "ttfb_p99_ms", False),
    Metric("total p50 ms", "lat_p50_ms", False),
)


def metrics_for(scenario: Scenario, concurrency: int) -> tuple[Metric, ...]:
    rate = Metric(scenario.rate_label, "rps", True)
    latency = STREAM_LATENCY if scenario.stream else NON_STREAM_LATENCY
    if concurrency == 1:
        return (*latency, rate)
    return (rate, latency[0])


def headline_latency(scenario: Scenario) -> Metric:
    """The latency the 2 ms target is about: p50 when not streaming, TTFB p50 when streaming."""
    return STREAM_LATENCY[0] if scenario.stream else NON_STREAM_LATENCY[0]


def _value(result: dict[str, Any] | None, key: str) -> float | None:
    if not result or "error" in result:
        return None
    value = result.get(key)
    return float(value) if isinstance(value, int | float) else None


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _versus(metric: Metric, value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return "-"
    if metric.is_rate:
        return f"{value / base:.2f}x" if base else "-"
    return f"{value - base:+.2f} ms"


def _compare(metric: Metric, sy: float | None, pk: float | None) -> str:
    if not sy or not pk:
        return "-"
    return f"{sy / pk:.2f}x" if metric.is_rate else f"{sy - pk:+.2f} ms"


def table_rows(results: Results, gateways: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["scenario", "conc", "metric", "direct"]
    for name in gateways:
        header += [name, f"{name} vs direct"]
    both = "portkey" in gateways and "switchyard" in gateways
    if both:
        header.append("switchyard / portkey")
    header += [f"{name} CPU%" for name in gateways]
    rows: list[list[str]] = []
    for name, by_conc in results.items():
        scenario = SCENARIOS[name]
        for concurrency, by_target in sorted(by_conc.items()):
            for metric in metrics_for(scenario, concurrency):
                base = _value(by_target.get("direct"), metric.key)
                row = [name, str(concurrency), metric.label, _fmt(base, 3)]
                for gateway in gateways:
                    value = _value(by_target.get(gateway), metric.key)
                    row += [_fmt(value), _versus(metric, value, base)]
                if both:
                    row.append(
                        _compare(
                            metric,
                            _value(by_target.get("switchyard"), metric.key),
                            _value(by_target.get("portkey"), metric.key),
                        )
                    )
                row += [_fmt(_value(by_target.get(g), "cpu_pct"), 0) for g in gateways]
                rows.append(row)
    return header, rows


def cpu_ms_per_call(result: dict[str, Any] | None) -> float | None:
    """The gateway's CPU time per call (its core's busy share divided by its rate): the
    per-call cost, comparable between scenarios even when the rates are CPU-bound."""
    cpu, rate = _value(result, "cpu_pct"), _value(result, "rps")
    if cpu is None or not rate:
        return None
    return cpu / 100.0 / rate * 1000.0


def protocol_rows(results: Results, high: int = 32) -> tuple[list[str], list[list[str]]]:
    """Passthrough vs translation: one row per scenario with its added latency at
    concurrency 1, its rate at `high` (against the baseline and Portkey) and the data
    plane's CPU time per call."""
    header = [
        "scenario",
        "caller → upstream",
        "path",
        "added latency c=1 (p50 / TTFB p50)",
        f"switchyard rate c={high}",
        f"vs direct c={high}",
        f"vs portkey c={high}",
        f"CPU ms/call c={high}",
    ]
    rows: list[list[str]] = []
    for name, by_conc in results.items():
        scenario = SCENARIOS[name]
        if scenario.governance:
            continue  # in governance_rows
        metric = headline_latency(scenario)
        low = by_conc.get(1, {})
        added = _added_at(low, metric.key)
        at_high = by_conc.get(high, {})
        sy = _value(at_high.get("switchyard"), "rps")
        rows.append(
            [
                name,
                scenario.route,
                "translation" if scenario.translated else "passthrough",
                "-" if added is None else f"{added:+.2f} ms",
                "-" if sy is None else f"{_fmt(sy)} {scenario.rate_label}",
                _versus(Metric("", "rps", True), sy, _value(at_high.get("direct"), "rps")),
                _compare(Metric("", "rps", True), sy, _value(at_high.get("portkey"), "rps")),
                _fmt(cpu_ms_per_call(at_high.get("switchyard")), 3),
            ]
        )
    return header, rows


def governance_rows(results: Results, high: int = 32) -> tuple[list[str], list[list[str]]]:
    """What each governance feature costs per request: the scenario through the data
    plane against GOVERNANCE_BASELINE (`chat`: plain key, one target) through the same
    data plane in the same run: p50 delta at concurrency 1, rate ratio and CPU time per
    call at `high`."""
    header = [
        "scenario",
        "adds",
        "p50 c=1",
        f"vs {GOVERNANCE_BASELINE}",
        f"req/s c={high}",
        f"vs {GOVERNANCE_BASELINE}",
        f"CPU ms/call c={high}",
        f"vs {GOVERNANCE_BASELINE}",
    ]
    base = results.get(GOVERNANCE_BASELINE, {})
    rate = Metric("", "rps", True)
    p50 = NON_STREAM_LATENCY[0]
    rows: list[list[str]] = []
    for name, by_conc in results.items():
        scenario = SCENARIOS[name]
        if not scenario.governance:
            continue
        low = _value(by_conc.get(1, {}).get("switchyard"), p50.key)
        low_base = _value(base.get(1, {}).get("switchyard"), p50.key)
        sy = _value(by_conc.get(high, {}).get("switchyard"), "rps")
        sy_base = _value(base.get(high, {}).get("switchyard"), "rps")
        cpu = cpu_ms_per_call(by_conc.get(high, {}).get("switchyard"))
        cpu_base = cpu_ms_per_call(base.get(high, {}).get("switchyard"))
        cpu_delta = "-" if cpu is None or cpu_base is None else f"{cpu - cpu_base:+.3f} ms"
        rows.append(
            [
                name,
                scenario.adds,
                _fmt(low, 3),
                _versus(p50, low, low_base),
                _fmt(sy),
                _versus(rate, sy, sy_base),
                _fmt(cpu, 3),
                cpu_delta,
            ]
        )
    return header, rows


def render_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = zip(row, widths, strict=True)
        lines.append("  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(cells)))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _added_at(by_target: dict[str, dict[str, Any]], key: str) -> float | None:
    sy, base = _value(by_target.get("switchyard"), key), _value(by_target.get("direct"), key)
    return None if sy is None or base is None else sy - base


def target_checks(results: Results) -> list[dict[str, Any]]:
    """The targets, for every scenario, each as measured in this run against its own
    baseline: added latency at concurrency 1, and the rate at 32 against Portkey's
    (when Portkey was measured in that scenario)."""
    checks: list[dict[str, Any]] = []
    for name, by_conc in results.items():
        scenario = SCENARIOS[name]
        metric = headline_latency(scenario)
        if 1 in by_conc:
            added = _added_at(by_conc[1], metric.key)
            what = "TTFB p50" if scenario.stream else "p50"
            checks.append(
                {
                    "scenario": name,
                    "target": f"{name}: {what} added at concurrency 1 <= {LATENCY_TARGET_MS:g} ms",
                    "measured": None if added is None else f"{added:+.2f} ms",
                    "pass": None if added is None else added <= LATENCY_TARGET_MS,
                }
            )
        by_target = by_conc.get(32, {})
        if "portkey" not in by_target:
            continue
        sy, pk = _value(by_target.get("switchyard"), "rps"), _value(by_target.get("portkey"), "rps")
        ratio = sy / pk if sy is not None and pk else None
        checks.append(
            {
                "scenario": name,
                "target": f"{name}: {scenario.rate_label} at concurrency 32 "
                f">= {THROUGHPUT_VS_PORTKEY:g}x Portkey's",
                "measured": None if ratio is None else f"{ratio:.2f}x ({_fmt(sy)} vs {_fmt(pk)})",
                "pass": None if ratio is None else ratio >= THROUGHPUT_VS_PORTKEY,
            }
        )
    return checks


def render_checks(checks: list[dict[str, Any]]) -> str:
    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("PASS" if ok else "FAIL")

    return "\n".join(f"- {verdict(c['pass'])}: {c['target']} — {c['measured'] or '-'}" for c in checks)


def error_lines(results: Results) -> list[str]:
    lines = []
    for scenario, by_conc in results.items():
        for concurrency, by_target in by_conc.items():
            for name, result in by_target.items():
                if "error" in result:
                    lines.append(f"{scenario} c={concurrency} {name}: {result['error']}")
                elif result.get("errors"):
                    lines.append(
                        f"{scenario} c={concurrency} {name}: {result['errors']} failed requests "
                        f"{result.get('error_kinds', '')}"
                    )
                if result.get("spool_bytes_after"):
                    lines.append(
                        f"{scenario} c={concurrency} {name}: the usage spool held "
                        f"{result['spool_bytes_after'] / 1e6:.1f} MB after the run (publishing fell behind)"
                    )
    return lines


def write_results(out_dir: Path, meta: dict[str, Any], results: Results, gateways: list[str]) -> str:
    """Write results.json and results.md; return the markdown."""
    header, rows = table_rows(results, gateways)
    proto_header, proto_rows = protocol_rows(results)
    checks = target_checks(results)
    gov_header, gov_rows = governance_rows(results)
    governance = (
        f"## Governance: cost per request against `{GOVERNANCE_BASELINE}`\n\n"
        f"{render_markdown(gov_header, gov_rows)}\n\n"
        if gov_rows
        else ""
    )
    payload = {
        "meta": meta,
        "checks": checks,
        "results": {s: {str(c): t for c, t in by_c.items()} for s, by_c in results.items()},
    }
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    setup = "\n".join(f"- {k}: {v}" for k, v in meta.items())
    errors = error_lines(results)
    markdown = (
        f"# Switchyard data-plane overhead\n\n{render_markdown(header, rows)}\n\n"
        f"## Passthrough vs translation\n\n{render_markdown(proto_header, proto_rows)}\n\n"
        + governance
        + f"## Targets\n\n{render_checks(checks)}\n\n"
        + (("## Errors and warnings\n\n" + "\n".join(f"- {e}" for e in errors) + "\n\n") if errors else "")
        + f"## Setup\n\n{setup}\n"
    )
    (out_dir / "results.md").write_text(markdown)
    return markdown
