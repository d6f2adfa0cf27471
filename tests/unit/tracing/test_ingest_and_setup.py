"""The ingest's batch span, and when configure_tracing turns tracing on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import Engine
from switchyard_common.db import METADATA, make_engine
from switchyard_common.tracing import TRACING, configure_tracing, shutdown_tracing, tracing_enabled
from switchyard_common.usage import encode_event
from switchyard_common.usage_store import usage_events
from switchyard_ingest.metrics import IngestMetrics
from switchyard_ingest.pipeline import IngestPipeline
from switchyard_ingest.writer import UsageWriter

from tests.unit.usage.test_usage_store import make_event

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    METADATA.create_all(engine, tables=[usage_events])
    yield engine
    engine.dispose()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_batch_span_counts_and_links_call_traces(spans: InMemorySpanExporter, engine: Engine) -> None:
    pipeline = IngestPipeline(UsageWriter(engine), IngestMetrics())
    events = [
        make_event(1, trace_id=TRACE_A),
        make_event(2, trace_id=TRACE_A),
        make_event(3, trace_id=TRACE_B),
        make_event(4),
    ]
    payloads = [encode_event(e) for e in events]
    await pipeline.process([*payloads, b"not an event"])
    await pipeline.process(payloads[:1])

    first, second = spans.get_finished_spans()
    assert first.name == "ingest usage batch"
    assert first.kind == SpanKind.CONSUMER
    assert (
        _attrs(first).items()
        >= {
            "messaging.batch.message_count": 5,
            "switchyard.ingest.inserted": 4,
            "switchyard.ingest.duplicates": 0,
            "switchyard.ingest.poison": 1,
        }.items()
    )
    linked = {format(link.context.trace_id, "032x"): dict(link.attributes or {}) for link in first.links}
    assert set(linked) == {TRACE_A, TRACE_B}
    assert linked[TRACE_A]["switchyard.usage.event_id"] == events[0].id
    assert _attrs(second)["switchyard.ingest.duplicates"] == 1


async def test_no_batch_span_when_off(tracing_off: None, engine: Engine) -> None:
    pipeline = IngestPipeline(UsageWriter(engine), IngestMetrics())
    outcome = await pipeline.process([encode_event(make_event(1, trace_id=TRACE_A))])
    assert outcome.inserted == 1
    assert TRACING.provider is None


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
    ):
        monkeypatch.delenv(name, raising=False)
    shutdown_tracing()
    yield monkeypatch
    shutdown_tracing()


def test_off_without_an_endpoint(otel_env: pytest.MonkeyPatch) -> None:
    assert configure_tracing("switchyard-test") is False
    assert not tracing_enabled()
    # The first call decides: an endpoint appearing later changes nothing until shutdown.
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert configure_tracing("switchyard-test") is False


def test_on_with_an_endpoint_and_idempotent(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    assert configure_tracing("switchyard-dataplane") is True
    provider = TRACING.provider
    assert provider is not None and tracing_enabled()
    assert provider.resource.attributes["service.name"] == "switchyard-dataplane"
    # `switchyard up` configured first: the tiers' own calls keep that provider.
    assert configure_tracing("switchyard-ingest") is True
    assert TRACING.provider is provider


def test_otel_service_name_wins(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    otel_env.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    assert configure_tracing("switchyard-dataplane") is True
    assert TRACING.provider is not None
    attributes = TRACING.provider.resource.attributes
    assert attributes["service.name"] == "gateway-eu"
    assert attributes["deployment.environment"] == "prod"


@pytest.mark.parametrize(("name", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")])
def test_disabled_by_the_standard_switches(otel_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    otel_env.setenv(name, value)
    assert configure_tracing("switchyard-test") is False
    assert TRACING.provider is None
