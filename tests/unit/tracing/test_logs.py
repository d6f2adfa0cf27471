"""Structured logs: the JSON and text formats, the call ids on every line emitted inside
a call, request ids (honoured, generated, echoed), and the environment switches."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from switchyard_common.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    TextFormatter,
    accept_request_id,
    bind_call,
    configure_logging,
    current_call,
    new_request_id,
    reset_call,
)
from switchyard_common.tracing import get_tracer

from tests.unit.dataplane.conftest import AUTH, Gateway, chat_body, openai_completion

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.getLogger("switchyard.test").makeRecord(
        "switchyard.test",
        logging.WARNING,
        __file__,
        1,
        message,
        args or ("world",),
        None,
        extra=extra or None,
    )
    return record


def test_json_line_has_the_standard_members_and_the_call_ids() -> None:
    token = bind_call("req-1", "4bf92f3577b34da6a3ce929d0e0e4736")
    try:
        line = JsonFormatter().format(_record(org="acme"))
    finally:
        reset_call(token)
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["level"] == "WARNING" and entry["logger"] == "switchyard.test"
    assert entry["timestamp"].endswith("Z") and "T" in entry["timestamp"]
    assert entry["request_id"] == "req-1" and entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert entry["org"] == "acme"  # extra= fields are members
    # Outside the call: no ids.
    assert current_call() is None
    assert "request_id" not in json.loads(JsonFormatter().format(_record()))


def test_json_line_takes_the_trace_id_of_the_current_span(spans: InMemorySpanExporter) -> None:
    with get_tracer("test").start_as_current_span("work") as span:
        entry = json.loads(JsonFormatter().format(_record()))
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")


def test_json_line_keeps_the_exception() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in entry["exception"]


def test_text_line_appends_the_ids() -> None:
    token = bind_call("req-2")
    try:
        line = TextFormatter().format(_record())
    finally:
        reset_call(token)
    assert line.endswith("switchyard.test: hello world [request_id=req-2]")


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        (b"abc-123_X.y", True),
        (b"has space", False),
        (b"x" * 129, False),
        (b"caf\xc3\xa9", False),
        (b"", False),
        (None, False),
    ],
)
def test_incoming_request_ids_are_kept_only_when_sane(incoming: bytes | None, kept: bool) -> None:
    result = accept_request_id(incoming)
    if kept:
        assert incoming is not None and result == incoming.decode()
    else:
        assert result.startswith("req_") and len(result) == len(new_request_id())


def test_generated_request_ids_are_unique() -> None:
    assert len({new_request_id() for _ in range(1000)}) == 1000


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access_level = logging.getLogger(ACCESS_LOGGER).level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(ACCESS_LOGGER).setLevel(access_level)


def test_configure_logging_defaults_and_environment(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SWITCHYARD_LOG_FORMAT", "SWITCHYARD_LOG_LEVEL", "SWITCHYARD_ACCESS_LOG"):
        monkeypatch.delenv(name, raising=False)
    assert configure_logging(logging.INFO, "json") == "json"
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(ours) == 1
    assert not logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)  # no per-call lines

    monkeypatch.setenv("SWITCHYARD_LOG_FORMAT", "text")
    monkeypatch.setenv("SWITCHYARD_LOG_LEVEL", "debug")
    monkeypatch.setenv("SWITCHYARD_ACCESS_LOG", "true")
    assert configure_logging(logging.INFO, "json") == "text"
    root = logging.getLogger()
    # Replaced, not added: one handler of ours.
    assert [
        type(h.formatter) for h in root.handlers if isinstance(h.formatter, JsonFormatter | TextFormatter)
    ] == [TextFormatter]
    assert root.level == logging.DEBUG
    assert logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)

    monkeypatch.setenv("SWITCHYARD_LOG_LEVEL", "loud")
    with pytest.raises(ValueError, match="not a log level"):
        configure_logging()


# --- inside data-plane calls -------------------------------------------------------


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The access logger on, formatted as JSON into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(level)


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=openai_completion())


async def test_line_logged_during_a_call_carries_its_request_and_trace_ids(
    spans: InMemorySpanExporter, make_gateway: Callable[..., Gateway], access_lines: io.StringIO
) -> None:
    gw = make_gateway(_ok)
    response = await gw.client.post(
        "/v1/chat/completions",
        content=chat_body(),
        headers={**AUTH, "traceparent": TRACEPARENT, "x-request-id": "caller-chosen-1"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "caller-chosen-1"

    [entry] = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.context is not None
    assert entry["request_id"] == "caller-chosen-1"
    assert entry["trace_id"] == format(server.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert entry["status"] == 200 and entry["route"] == "chat_completions" and entry["model"] == "chat"
    assert current_call() is None  # unbound after the call


async def test_every_answer_has_a_request_id(
    tracing_off: None, make_gateway: Callable[..., Gateway], access_lines: io.StringIO
) -> None:
    gw = make_gateway(_ok)
    ok = await gw.client.post("/v1/chat/completions", content=chat_body(), headers=AUTH)
    refused = await gw.client.post(
        "/v1/chat/completions", content=chat_body(), headers={"x-request-id": "r-9"}
    )
    streamed = await gw.client.post("/v1/chat/completions", content=chat_body(stream=True), headers=AUTH)
    cold = await gw.client.get("/v1/models", headers={**AUTH, "x-request-id": "cold-1"})
    assert ok.status_code == 200 and ok.headers["x-request-id"].startswith("req_")
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "r-9"
    assert streamed.headers["x-request-id"].startswith("req_")
    assert cold.status_code == 200 and cold.headers["x-request-id"] == "cold-1"
    assert len({ok.headers["x-request-id"], streamed.headers["x-request-id"]}) == 2
    # Without tracing the lines have the request id and no trace id.
    entries = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    assert [e["request_id"] for e in entries][0] == ok.headers["x-request-id"]
    assert all("trace_id" not in e for e in entries)
