"""An unhandled error in the admin API: Starlette answers it from ServerErrorMiddleware,
outside every `add_middleware` middleware, so the request-id and tracing middlewares must
wrap that too: the 500 carries `x-request-id`, and the error's log line the request id
and trace id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from switchyard_common.db import make_engine
from switchyard_common.logs import JsonFormatter
from switchyard_controlplane.app import create_app
from switchyard_controlplane.settings import ControlPlaneSettings
from switchyard_controlplane.snapshot_hub import SnapshotHub

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def error_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("switchyard_controlplane")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


async def test_unhandled_error_answers_500_with_the_request_id_and_logs_the_ids(
    spans: InMemorySpanExporter, sqlite_url: str, error_lines: io.StringIO
) -> None:
    engine = make_engine(sqlite_url)
    app = create_app(
        ControlPlaneSettings(database_url=sqlite_url, secret_key="t"), engine, SnapshotHub(engine)
    )

    async def boom() -> None:
        raise RuntimeError("the database went away")

    app.add_api_route("/api/v1/boom", boom)
    # The app re-raises after answering (so the server logs it); the client must not.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cp") as client:
            response = await client.get(
                "/api/v1/boom",
                headers={
                    "x-request-id": "ops-ticket-42",
                    "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01",
                },
            )
            generated = await client.get("/api/v1/boom")
    finally:
        engine.dispose()

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "ops-ticket-42"
    assert generated.status_code == 500 and generated.headers["x-request-id"].startswith("req_")

    entries = [json.loads(line) for line in error_lines.getvalue().splitlines()]
    [entry] = [e for e in entries if e.get("request_id") == "ops-ticket-42"]
    assert entry["level"] == "ERROR" and "the database went away" in entry["exception"]
    assert entry["trace_id"] == TRACE_ID
    [server] = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.SERVER
        and s.context is not None
        and format(s.context.trace_id, "032x") == TRACE_ID
    ]
    assert dict(server.attributes or {})["http.response.status_code"] == 500
