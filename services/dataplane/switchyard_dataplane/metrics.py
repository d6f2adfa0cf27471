"""Prometheus metrics of one data plane, in a registry of its own (several tiers may share
a process in embedded mode).

Counters and histograms move on the request path (children cached, no label lookup per
call); what describes state (snapshot age, spool depth, publisher totals) is read when
/metrics is scraped, by `_StateCollector`, so the request path pays nothing for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .index import IndexHolder

__all__ = ["Metrics", "upstream_error_class"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # CPU, memory and file descriptors of this process (the dashboards' resource panels).
        ProcessCollector(registry=self.registry)
        r = self.registry
        self._requests = Counter(
            "switchyard_dataplane_requests",
            "Calls answered, by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.unauthenticated = Counter(
            "switchyard_dataplane_unauthenticated", "Calls refused for a missing or bad key.", registry=r
        )
        self._attempts = Counter(
            "switchyard_dataplane_upstream_attempts",
            "Upstream attempts, by provider and outcome.",
            ["provider", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "switchyard_dataplane_request_seconds",
            "Time to answer a call (end of response), by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "switchyard_dataplane_time_to_first_byte_seconds",
            "Time until the first byte of a successful answer was sent (for streams: the "
            "first event), by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._upstream_errors = Counter(
            "switchyard_dataplane_upstream_errors",
            "Failed upstream attempts, by provider and class (timeout, unreachable, "
            "http_429, http_4xx, http_5xx, stream_error, error).",
            ["provider", "class"],
            registry=r,
        )
        self.snapshot_version = Gauge(
            "switchyard_dataplane_snapshot_version", "Version of the snapshot being served.", registry=r
        )
        self.snapshots_refused = Counter(
            "switchyard_dataplane_snapshots_refused", "Snapshots that failed validation.", registry=r
        )
        self.usage_events = Counter(
            "switchyard_dataplane_usage_events", "Usage events handed to the publisher.", registry=r
        )
        self.usage_publish_errors = Counter(
            "switchyard_dataplane_usage_publish_errors", "Usage events the publisher refused.", registry=r
        )
        self._failovers = Counter(
            "switchyard_dataplane_failovers",
            "Targets a call left for the next one, by provider and reason (connect_error, "
            "timeout, 429, 5xx, status_<n>, breaker_open, over_quota).",
            ["provider", "reason"],
            registry=r,
        )
        self._breaker_transitions = Counter(
            "switchyard_dataplane_breaker_transitions",
            "Circuit-breaker state changes made by this replica, by provider and new state.",
            ["provider", "state"],
            registry=r,
        )
        self.open_breakers = Gauge(
            "switchyard_dataplane_open_breakers",
            "Circuit breakers open or half-open in this replica's view.",
            registry=r,
        )
        self._limiter_refusals = Counter(
            "switchyard_dataplane_limiter_refusals",
            "Calls refused by a limit, budget or scope rule (key.rpm, org.tpm, model.rpm, "
            "key.concurrency, key.budget.day, ...).",
            ["rule"],
            registry=r,
        )
        self._shadow_refusals = Counter(
            "switchyard_dataplane_shadow_refusals",
            "Calls a rule in shadow mode would have refused (admitted), by rule.",
            ["rule"],
            registry=r,
        )
        self._limiter_fallbacks = Counter(
            "switchyard_dataplane_limiter_fallbacks",
            "Admissions made while Redis was unreachable, by outcome (local: the in-memory "
            "limiter decided; refused: 503 under on_redis_failure=closed).",
            ["outcome"],
            registry=r,
        )
        self.redis_up = Gauge(
            "switchyard_dataplane_redis_up",
            "1 while Redis (limits, budgets, breakers) is reachable, 0 while it is not; "
            "absent in embedded mode.",
            registry=r,
        )
        # labels() takes a lock and builds a tuple each time; keep the children.
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._attempt_children: dict[tuple[str, str], Counter] = {}
        self._error_children: dict[tuple[str, str], Counter] = {}
        self._latency_children: dict[str, tuple[Histogram, Histogram]] = {}
        self._state = _StateCollector()
        r.register(self._state)

    def request(self, route: str, status: int) -> None:
        child = self._request_children.get((route, status))
        if child is None:
            child = self._request_children[(route, status)] = self._requests.labels(route, str(status))
        child.inc()

    def attempt(self, provider: str, outcome: str, status: int | None = None) -> None:
        child = self._attempt_children.get((provider, outcome))
        if child is None:
            child = self._attempt_children[(provider, outcome)] = self._attempts.labels(provider, outcome)
        child.inc()
        kind = upstream_error_class(outcome, status)
        if kind is not None:
            error = self._error_children.get((provider, kind))
            if error is None:
                error = self._error_children[(provider, kind)] = self._upstream_errors.labels(provider, kind)
            error.inc()

    def failover(self, provider: str, reason: str) -> None:
        self._failovers.labels(provider, reason).inc()  # failure path only: no child cache

    def breaker_transition(self, provider: str, state: str) -> None:
        self._breaker_transitions.labels(provider, state).inc()

    # Refusals and fallbacks are rare next to admitted calls: no child cache needed.
    def limiter_refusal(self, rule: str) -> None:
        self._limiter_refusals.labels(rule).inc()

    def shadow_refusal(self, rule: str) -> None:
        self._shadow_refusals.labels(rule).inc()

    def limiter_fallback(self, outcome: str) -> None:
        self._limiter_fallbacks.labels(outcome).inc()

    def call_done(self, route: str, started: float, ttfb: float | None) -> None:
        """A call ended: its latency, and its time to first byte if an answer started
        (perf_counter values)."""
        children = self._latency_children.get(route)
        if children is None:
            children = self._latency_children[route] = (self.latency.labels(route), self.ttfb.labels(route))
        children[0].observe(time.perf_counter() - started)
        if ttfb is not None:
            children[1].observe(ttfb - started)

    def watch(self, holder: IndexHolder, publisher: Any) -> None:
        """Report the state of `holder`'s snapshot and `publisher`'s queue and spool at
        each scrape (the publisher's optional `stats`, `spool_pending` and `queued`)."""
        self._state.holder = holder
        self._state.publisher = publisher

    def render(self) -> bytes:
        return generate_latest(self.registry)


# Attempt outcomes that are the upstream's failure (not a refusal before any call, such
# as an open breaker or a target's own limit).
_FAILED = frozenset({"error", "timeout", "unreachable"})


def upstream_error_class(outcome: str, status: int | None) -> str | None:
    """The `class` label of a failed attempt; None for an attempt that did not fail."""
    if outcome == "rate_limited":  # the upstream answered 429
        return "http_429"
    if outcome not in _FAILED:
        return None
    if outcome != "error":
        return outcome
    if status is None:
        return "error"
    if status < 400:
        return "stream_error"  # failed after a success status (mid-stream)
    if status == 429:
        return "http_429"
    return "http_5xx" if status >= 500 else "http_4xx"


class _StateCollector(Collector):
    """Gauges computed at scrape time from live objects."""

    def __init__(self) -> None:
        self.holder: IndexHolder | None = None
        self.publisher: Any = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families vary with what is attached; collect() describes them

    def collect(self) -> Iterator[Metric]:
        holder = self.holder
        index = holder.current if holder is not None else None
        if index is not None:
            age = GaugeMetricFamily(
                "switchyard_dataplane_snapshot_age_seconds",
                "Seconds since the snapshot being served was built by the control plane.",
            )
            age.add_metric([], max(0.0, time.time() - index.created_at_ms / 1000.0))
            yield age
        publisher = self.publisher
        if publisher is None:
            return
        spool = getattr(publisher, "spool_pending", None)
        if isinstance(spool, int):
            yield GaugeMetricFamily(
                "switchyard_dataplane_spool_depth",
                "Usage events waiting in the on-disk spool for NATS.",
                value=spool,
            )
        queued = getattr(publisher, "queued", None)
        if isinstance(queued, int):
            yield GaugeMetricFamily(
                "switchyard_dataplane_usage_queue_depth",
                "Usage events queued in memory for the publisher.",
                value=queued,
            )
        stats = getattr(publisher, "stats", None)
        if stats is None:
            return
        for name, help_text, value in (
            (
                "usage_events_published",
                "Usage events acknowledged by JetStream from memory.",
                stats.published,
            ),
            ("usage_events_spooled", "Usage events written to the disk spool.", stats.spooled),
            (
                "usage_events_replayed",
                "Usage events acknowledged by JetStream from the spool.",
                stats.replayed,
            ),
            (
                "usage_events_dropped",
                "Usage events lost (spool full, oversized, not started).",
                stats.dropped,
            ),
            (
                "usage_publish_failures",
                "Publish windows JetStream did not fully acknowledge (events then spooled).",
                stats.publish_failures,
            ),
        ):
            yield CounterMetricFamily(f"switchyard_dataplane_{name}", help_text, value=value)
