"""Control-plane spans: admin-API requests, snapshot rebuilds and WatchSnapshot pushes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from switchyard_common.db import make_engine
from switchyard_common.proto import controlplane_pb2 as pb
from switchyard_controlplane.app import create_app
from switchyard_controlplane.bootstrap import bootstrap_admin
from switchyard_controlplane.grpc_server import ControlPlaneService
from switchyard_controlplane.migrate import upgrade_database
from switchyard_controlplane.settings import ControlPlaneSettings
from switchyard_controlplane.snapshot_hub import SnapshotHub

from tests.unit.controlplane.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, login

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


@dataclass
class ControlPlane:
    client: httpx.AsyncClient
    hub: SnapshotHub


@pytest.fixture
async def cp(spans: InMemorySpanExporter, sqlite_url: str) -> AsyncIterator[ControlPlane]:
    """A control plane whose hub starts with tracing already on (the first rebuild is traced)."""
    settings = ControlPlaneSettings(
        database_url=sqlite_url,
        secret_key="unit-test-secret",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        snapshot_poll_interval=0.05,
    )
    upgrade_database(sqlite_url)
    engine = make_engine(sqlite_url)
    bootstrap_admin(engine, settings)
    hub = SnapshotHub(engine, poll_interval=settings.snapshot_poll_interval)
    await hub.start()
    app = create_app(settings, engine, hub)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cp") as client:
        yield ControlPlane(client, hub)
    await hub.stop()
    engine.dispose()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


async def _wait_for(spans: InMemorySpanExporter, name: str, count: int) -> list[ReadableSpan]:
    for _ in range(200):  # up to 10 s
        found = _named(spans, name)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {count} span(s) named {name!r}: {[s.name for s in spans.get_finished_spans()]}")


async def test_admin_request_span_continues_the_caller_trace(
    spans: InMemorySpanExporter, cp: ControlPlane
) -> None:
    response = await cp.client.post(
        "/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert response.status_code == 200

    [span] = _named(spans, "POST /api/v1/auth/login")
    assert span.kind == SpanKind.SERVER
    assert span.context is not None and span.parent is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert (
        _attrs(span).items()
        >= {
            "http.request.method": "POST",
            "http.route": "/api/v1/auth/login",
            "http.response.status_code": 200,
        }.items()
    )
    assert span.status.status_code == StatusCode.UNSET


async def test_unmatched_path_and_probes(spans: InMemorySpanExporter, cp: ControlPlane) -> None:
    assert (await cp.client.get("/api/v1/no-such-thing")).status_code == 404
    assert (await cp.client.get("/healthz")).status_code == 200

    server = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    # The 404 is named by its method alone (no route template: bounded names); the
    # probe is not traced at all.
    assert [s.name for s in server] == ["GET"]
    assert _attrs(server[0])["http.response.status_code"] == 404
    assert "http.route" not in _attrs(server[0])


async def test_rebuild_and_push_spans(spans: InMemorySpanExporter, cp: ControlPlane) -> None:
    cp.client.headers.update(await login(cp.client))
    # The database starts at version 0, which a watcher from 0 already has: change it.
    assert (await cp.client.post("/api/v1/organizations", json={"name": "globex"})).status_code == 201
    builds = await _wait_for(spans, "snapshot rebuild", 2)
    first_build = builds[1]
    assert _attrs(first_build)["switchyard.snapshot.published"] is True
    assert _attrs(first_build)["switchyard.snapshot.previous_version"] == 0

    service = ControlPlaneService(cp.hub)
    request = pb.WatchSnapshotRequest(known_version=0, dataplane_id="dp-1")
    watch = service.WatchSnapshot(request, None)  # type: ignore[arg-type]
    first = await asyncio.wait_for(anext(watch), 5)
    assert first.version == _attrs(first_build)["switchyard.snapshot.version"]

    assert (await cp.client.post("/api/v1/organizations", json={"name": "initech"})).status_code == 201
    second = await asyncio.wait_for(anext(watch), 10)  # resuming ends the first push
    assert second.version > first.version
    await watch.aclose()  # type: ignore[attr-defined]

    second_build = (await _wait_for(spans, "snapshot rebuild", 3))[2]
    assert _attrs(second_build)["switchyard.snapshot.version"] == second.version
    assert _attrs(second_build)["switchyard.snapshot.previous_version"] == first.version

    pushes = _named(spans, "WatchSnapshot push")
    assert [_attrs(p)["switchyard.snapshot.version"] for p in pushes] == [first.version, second.version]
    done = pushes[0]
    assert done.kind == SpanKind.PRODUCER
    assert _attrs(done).items() >= {"rpc.system": "grpc", "switchyard.dataplane_id": "dp-1"}.items()
    assert done.status.status_code == StatusCode.UNSET
    # A push is a child of the rebuild that made its version: one trace per change.
    assert done.parent is not None and first_build.context is not None
    assert done.parent.span_id == first_build.context.span_id
    assert pushes[1].parent is not None and second_build.context is not None
    assert pushes[1].parent.span_id == second_build.context.span_id
    # The stream closed before the second push was confirmed.
    assert pushes[1].status.status_code == StatusCode.ERROR
