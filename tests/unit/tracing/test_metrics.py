"""The metrics each tier adds for operators: data-plane latency and time to first byte
per route, upstream errors by class, state read at scrape time (snapshot age, spool
depth, publisher totals); control-plane connected data planes and snapshot pushes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_controlplane.grpc_server import ControlPlaneService
from switchyard_dataplane.metrics import Metrics, upstream_error_class
from switchyard_dataplane.nats_publisher import PublisherStats

from tests.unit.controlplane.conftest import login
from tests.unit.dataplane.conftest import AUTH, Gateway, chat_body, make_snapshot, openai_completion
from tests.unit.tracing.test_controlplane_spans import ControlPlane, cp  # noqa: F401 (fixture)


@pytest.mark.parametrize(
    ("outcome", "status", "expected"),
    [
        ("ok", 200, None),
        ("breaker_open", None, None),  # no upstream call was made
        ("timeout", None, "timeout"),
        ("unreachable", None, "unreachable"),
        ("error", 503, "http_5xx"),
        ("error", 429, "http_429"),
        ("error", 404, "http_4xx"),
        ("error", 200, "stream_error"),
        ("error", None, "error"),
    ],
)
def test_upstream_error_classes(outcome: str, status: int | None, expected: str | None) -> None:
    assert upstream_error_class(outcome, status) == expected


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _metrics(gw: Gateway) -> Metrics:
    return gw.app.api.state.metrics  # type: ignore[no-any-return]


async def test_latency_ttfb_and_upstream_errors_move(
    tracing_off: None, make_gateway: Callable[..., Gateway]
) -> None:
    answers = iter([httpx.Response(200, json=openai_completion()), httpx.Response(503, json={"error": {}})])
    gw = make_gateway(lambda request: next(answers))
    metrics = _metrics(gw)
    assert (
        await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    ).status_code == 200
    assert (
        await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    ).status_code == 503

    route = {"route": "chat_completions"}
    assert _sample(metrics, "switchyard_dataplane_request_seconds_count", **route) == 2
    assert _sample(metrics, "switchyard_dataplane_time_to_first_byte_seconds_count", **route) == 1
    assert (
        _sample(metrics, "switchyard_dataplane_upstream_errors_total", provider="up", **{"class": "http_5xx"})
        == 1
    )
    assert _sample(metrics, "switchyard_dataplane_upstream_attempts_total", provider="up", outcome="ok") == 1


class _Publisher:
    """What the collector reads from a publisher (NatsPublisher's introspection)."""

    def __init__(self) -> None:
        self.stats = PublisherStats(published=5, spooled=3, replayed=2, dropped=1, publish_failures=1)
        self.spool_pending = 4
        self.queued = 2


async def test_state_is_read_at_scrape_time(tracing_off: None, make_gateway: Callable[..., Gateway]) -> None:
    created = int((time.time() - 30) * 1000)
    snapshot = make_snapshot()
    snapshot.created_at_ms = created
    gw = make_gateway(lambda r: httpx.Response(200, json=openai_completion()), snapshot)
    metrics = _metrics(gw)
    assert 29 <= _sample(metrics, "switchyard_dataplane_snapshot_age_seconds") < 120
    # The recording publisher has no spool: no spool figures.
    assert metrics.registry.get_sample_value("switchyard_dataplane_spool_depth") is None

    publisher = _Publisher()
    metrics.watch(gw.app.api.state.holder, publisher)
    assert _sample(metrics, "switchyard_dataplane_spool_depth") == 4
    assert _sample(metrics, "switchyard_dataplane_usage_queue_depth") == 2
    publisher.spool_pending = 0  # read live, not cached
    assert _sample(metrics, "switchyard_dataplane_spool_depth") == 0
    assert _sample(metrics, "switchyard_dataplane_usage_events_replayed_total") == 2
    assert _sample(metrics, "switchyard_dataplane_usage_publish_failures_total") == 1
    text = (await gw.client.get("/metrics")).text
    assert "switchyard_dataplane_snapshot_age_seconds " in text
    assert "switchyard_dataplane_spool_depth 0.0" in text


def _cp_sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_connected_dataplanes_and_pushes(cp: ControlPlane) -> None:  # noqa: F811
    cp.client.headers.update(await login(cp.client))
    assert (await cp.client.post("/api/v1/organizations", json={"name": "globex"})).status_code == 201
    connected = _cp_sample("switchyard_controlplane_connected_dataplanes")
    pushes = _cp_sample("switchyard_controlplane_snapshot_pushes_total")

    service = ControlPlaneService(cp.hub)
    watch = service.WatchSnapshot(pb.WatchSnapshotRequest(known_version=0, dataplane_id="dp-m"), None)  # type: ignore[arg-type]
    await asyncio.wait_for(anext(watch), 5)
    assert _cp_sample("switchyard_controlplane_connected_dataplanes") == connected + 1
    assert (await cp.client.post("/api/v1/organizations", json={"name": "initech"})).status_code == 201
    await asyncio.wait_for(anext(watch), 10)  # resuming counts the first push as sent
    assert _cp_sample("switchyard_controlplane_snapshot_pushes_total") == pushes + 1
    await watch.aclose()  # type: ignore[attr-defined]
    assert _cp_sample("switchyard_controlplane_connected_dataplanes") == connected


async def test_admin_responses_carry_a_request_id(cp: ControlPlane) -> None:  # noqa: F811
    chosen = await cp.client.get("/api/v1/organizations", headers={"x-request-id": "admin-req-1"})
    assert chosen.status_code == 401 and chosen.headers["x-request-id"] == "admin-req-1"
    made = await cp.client.get("/healthz")
    assert made.headers["x-request-id"].startswith("req_")


def test_dataplane_and_ingest_export_their_process_resources() -> None:
    from prometheus_client import generate_latest
    from switchyard_ingest.metrics import IngestMetrics

    for registry in (Metrics().registry, IngestMetrics().registry):
        text = generate_latest(registry)
        assert b"process_resident_memory_bytes" in text and b"process_cpu_seconds_total" in text
