"""The Grafana dashboards of deploy/compose: their queries and the metric names in them."""

from __future__ import annotations

import json
import re

from .tooling import COMPOSE_DIR

DASHBOARDS = COMPOSE_DIR / "grafana" / "dashboards"

# PromQL/MetricsQL words that look like metric names but are functions, keywords or labels.
_NOT_METRICS = frozenset(
    {
        "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate",
        "histogram_quantile", "sum_over_time", "max_over_time", "last_over_time", "clamp_min",
        "topk", "bottomk",
        "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
    }
)  # fmt: skip


def dashboard_exprs() -> list[str]:
    exprs: list[str] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs.extend(target["expr"] for target in panel.get("targets", []))
    return exprs


def _strip(expr: str) -> str:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    return re.sub(r'"[^"]*"', "", expr)


def metric_names(exprs: list[str]) -> set[str]:
    names: set[str] = set()
    for expr in exprs:
        for word in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", _strip(expr)):
            if word not in _NOT_METRICS and not re.fullmatch(r"e\d*|inf|nan", word, flags=re.IGNORECASE):
                names.add(word)
    return names


def render_expr(expr: str, *, interval: str, rate_interval: str) -> str:
    """The query as Grafana sends it, with its interval variables filled in."""
    return expr.replace("$__rate_interval", rate_interval).replace("$__interval", interval)
