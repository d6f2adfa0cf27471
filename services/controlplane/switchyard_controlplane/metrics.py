"""Prometheus metrics of the control plane (default registry, `switchyard_controlplane_` prefix)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CONNECTED_DATAPLANES",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "SNAPSHOT_BUILDS",
    "SNAPSHOT_ERRORS",
    "SNAPSHOT_PUSHES",
    "SNAPSHOT_VERSION",
]

HTTP_REQUESTS = Counter(
    "switchyard_controlplane_http_requests",
    "Admin API requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "switchyard_controlplane_http_request_seconds",
    "Admin API latency by route template.",
    ["route"],
)
SNAPSHOT_VERSION = Gauge("switchyard_controlplane_snapshot_version", "Version of the snapshot being served.")
SNAPSHOT_BUILDS = Counter(
    "switchyard_controlplane_snapshot_builds", "Snapshots built after a version change."
)
SNAPSHOT_ERRORS = Counter("switchyard_controlplane_snapshot_poll_errors", "Failed version polls or builds.")
CONNECTED_DATAPLANES = Gauge(
    "switchyard_controlplane_connected_dataplanes",
    "Data planes connected to this replica (one per open WatchSnapshot stream).",
)
SNAPSHOT_PUSHES = Counter(
    "switchyard_controlplane_snapshot_pushes",
    "Snapshots sent to data planes on WatchSnapshot streams.",
)
