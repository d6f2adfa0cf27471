"""Prometheus metrics of one data plane, in a registry of its own (several tiers may share
a process in embedded mode)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
            "Time to answer a call (end of response).",
            buckets=_LATENCY_BUCKETS,
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
        # labels() takes a lock and builds a tuple each time; keep the children.
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._attempt_children: dict[tuple[str, str], Counter] = {}

    def request(self, route: str, status: int) -> None:
        child = self._request_children.get((route, status))
        if child is None:
            child = self._request_children[(route, status)] = self._requests.labels(route, str(status))
        child.inc()

    def attempt(self, provider: str, outcome: str) -> None:
        child = self._attempt_children.get((provider, outcome))
        if child is None:
            child = self._attempt_children[(provider, outcome)] = self._attempts.labels(provider, outcome)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
