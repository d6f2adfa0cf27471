"""Turn the measurements into the overhead table, the target checks and the files
written to bench/results/<timestamp>/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# results[scenario][concurrency][target name] -> measurement dict
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


def metrics_for(scenario: str, concurrency: int) -> tuple[Metric, ...]:
    rate = Metric("streams/s" if scenario == "chat_stream" else "req/s", "rps", True)
    latency = STREAM_LATENCY if scenario == "chat_stream" else NON_STREAM_LATENCY
    if concurrency == 1:
        return (*latency, rate)
    return (rate, latency[0])


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


def table_rows(results: Results, gateways: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["scenario", "conc", "metric", "direct"]
    for name in gateways:
        header += [name, f"{name} vs direct"]
    if "portkey" in gateways and "switchyard" in gateways:
        header.append("switchyard / portkey")
    header += [f"{name} CPU%" for name in gateways]
    rows: list[list[str]] = []
    for scenario, by_conc in results.items():
        for concurrency, by_target in sorted(by_conc.items()):
            for metric in metrics_for(scenario, concurrency):
                base = _value(by_target.get("direct"), metric.key)
                row = [scenario, str(concurrency), metric.label, _fmt(base, 3)]
                for name in gateways:
                    value = _value(by_target.get(name), metric.key)
                    row += [_fmt(value), _versus(metric, value, base)]
                if "portkey" in gateways and "switchyard" in gateways:
                    sy = _value(by_target.get("switchyard"), metric.key)
                    pk = _value(by_target.get("portkey"), metric.key)
                    ratio = "-"
                    if sy and pk:
                        ratio = f"{sy / pk:.2f}x" if metric.is_rate else f"{sy - pk:+.2f} ms"
                    row.append(ratio)
                row += [_fmt(_value(by_target.get(name), "cpu_pct"), 0) for name in gateways]
                rows.append(row)
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


def _added(results: Results, scenario: str, key: str) -> float | None:
    by_target = results.get(scenario, {}).get(1, {})
    sy, base = _value(by_target.get("switchyard"), key), _value(by_target.get("direct"), key)
    return None if sy is None or base is None else sy - base


def target_checks(results: Results) -> list[dict[str, Any]]:
    """The issue's targets, each as measured in this run against its own baseline."""
    checks: list[dict[str, Any]] = []
    added = _added(results, "chat", "lat_p50_ms")
    checks.append(
        {
            "target": f"non-streaming p50 added latency at concurrency 1 <= {LATENCY_TARGET_MS} ms",
            "measured": None if added is None else f"{added:+.2f} ms",
            "pass": None if added is None else added <= LATENCY_TARGET_MS,
        }
    )
    added = _added(results, "chat_stream", "ttfb_p50_ms")
    checks.append(
        {
            "target": f"streaming TTFB p50 added at concurrency 1 <= {LATENCY_TARGET_MS} ms",
            "measured": None if added is None else f"{added:+.2f} ms",
            "pass": None if added is None else added <= LATENCY_TARGET_MS,
        }
    )
    for scenario, unit in (("chat", "req/s"), ("chat_stream", "streams/s")):
        by_target = results.get(scenario, {}).get(32, {})
        sy, pk = _value(by_target.get("switchyard"), "rps"), _value(by_target.get("portkey"), "rps")
        ratio = sy / pk if sy is not None and pk else None
        checks.append(
            {
                "target": f"{scenario} {unit} at concurrency 32 >= {THROUGHPUT_VS_PORTKEY:g}x Portkey's",
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
    checks = target_checks(results)
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
        f"## Targets\n\n{render_checks(checks)}\n\n"
        + (("## Errors and warnings\n\n" + "\n".join(f"- {e}" for e in errors) + "\n\n") if errors else "")
        + f"## Setup\n\n{setup}\n"
    )
    (out_dir / "results.md").write_text(markdown)
    return markdown
