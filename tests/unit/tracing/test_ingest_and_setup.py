"""The ingest's spans (a batch span linked to every traced event, and per event a span
that continues the call's trace from the message headers), and when configure_tracing
turns tracing on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import Engine
from switchyard_common.bus import BusMessage
from switchyard_common.db import METADATA, make_engine
from switchyard_common.tracing import TRACING, configure_tracing, shutdown_tracing, tracing_enabled
from switchyard_common.usage import encode_event
from switchyard_common.usage_store import USAGE_TABLES
from switchyard_ingest.batch_tracing import traced_process
from switchyard_ingest.metrics import IngestMetrics
from switchyard_ingest.pipeline import IngestPipeline
from switchyard_ingest.writer import UsageWriter

from tests.unit.usage.test_usage_store import make_event

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_A = "00f067aa0ba902b7"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"
SPAN_B = "b7ad6b7169203331"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    METADATA.create_all(engine, tables=USAGE_TABLES)
    yield engine
    engine.dispose()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _message(data: bytes, msg_id: str, trace: tuple[str, str] | None = None) -> BusMessage:
    headers = (("traceparent", f"00-{trace[0]}-{trace[1]}-01"),) if trace else ()
    return BusMessage("usage.acme", msg_id, data, headers)


async def test_event_spans_continue_the_call_traces_and_the_batch_links_them(
    spans: InMemorySpanExporter, engine: Engine
) -> None:
    pipeline = IngestPipeline(UsageWriter(engine), IngestMetrics())
    events = [make_event(1, trace_id=TRACE_A), make_event(2, trace_id=TRACE_B), make_event(3)]
    messages = [
        _message(encode_event(events[0]), events[0].id, (TRACE_A, SPAN_A)),
        _message(encode_event(events[1]), events[1].id, (TRACE_B, SPAN_B)),
        _message(encode_event(events[2]), events[2].id),  # no trace context: no span of its own
        _message(b"not an event", "poison-1", (TRACE_B, "1111111111111111")),
    ]
    outcome = await traced_process(pipeline, messages)
    assert outcome.inserted == 3 and [index for index, _ in outcome.poison] == [3]

    finished = spans.get_finished_spans()
    [batch] = [s for s in finished if s.name == "ingest usage batch"]
    per_event = {format(s.parent.span_id, "016x"): s for s in finished if s.parent is not None}
    assert batch.kind == SpanKind.CONSUMER
    assert (
        _attrs(batch).items()
        >= {
            "messaging.batch.message_count": 4,
            "switchyard.ingest.traced_events": 3,
            "switchyard.ingest.inserted": 3,
            "switchyard.ingest.duplicates": 0,
            "switchyard.ingest.poison": 1,
        }.items()
    )
    # The batch links each traced event's producer span, with its message id.
    linked = {
        (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) for link in batch.links
    }
    assert linked == {(TRACE_A, SPAN_A), (TRACE_B, SPAN_B), (TRACE_B, "1111111111111111")}
    assert {dict(link.attributes or {}).get("messaging.message.id") for link in batch.links} == {
        events[0].id,
        events[1].id,
        "poison-1",
    }

    # Each traced event gets a CONSUMER span in the CALL's trace, child of its producer.
    assert set(per_event) == {SPAN_A, SPAN_B, "1111111111111111"}
    stored = per_event[SPAN_A]
    assert stored.kind == SpanKind.CONSUMER and stored.name == "process usage.acme"
    assert stored.context is not None and format(stored.context.trace_id, "032x") == TRACE_A
    assert _attrs(stored)["switchyard.ingest.outcome"] == "stored"
    assert _attrs(stored)["messaging.message.id"] == events[0].id
    assert [link.context.span_id for link in stored.links] == [batch.context.span_id]  # type: ignore[union-attr]
    poisoned = per_event["1111111111111111"]
    assert _attrs(poisoned)["switchyard.ingest.outcome"] == "dead_letter"
    assert poisoned.status.status_code == StatusCode.ERROR


async def test_failed_batch_marks_every_event_for_retry(spans: InMemorySpanExporter, engine: Engine) -> None:
    pipeline = IngestPipeline(UsageWriter(engine), IngestMetrics())
    event = make_event(1, trace_id=TRACE_A)
    engine.dispose()
    with engine.begin() as conn:  # the table is gone: the write fails as a database outage would
        METADATA.drop_all(conn, tables=USAGE_TABLES)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await traced_process(pipeline, [_message(encode_event(event), event.id, (TRACE_A, SPAN_A))])
    finished = spans.get_finished_spans()
    [batch] = [s for s in finished if s.name == "ingest usage batch"]
    [child] = [s for s in finished if s.name != "ingest usage batch"]
    assert batch.status.status_code == StatusCode.ERROR
    assert _attrs(child)["switchyard.ingest.outcome"] == "retry"
    assert child.status.status_code == StatusCode.ERROR


async def test_no_span_when_off(tracing_off: None, engine: Engine) -> None:
    pipeline = IngestPipeline(UsageWriter(engine), IngestMetrics())
    event = make_event(1, trace_id=TRACE_A)
    outcome = await traced_process(pipeline, [_message(encode_event(event), event.id, (TRACE_A, SPAN_A))])
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
