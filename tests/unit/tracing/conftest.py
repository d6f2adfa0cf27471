"""Tracing fixtures: spans go to an in-memory exporter through tracing.py's test hook
(never the environment), and tracing is off again after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from switchyard_common.tracing import TRACING, install_test_exporter, shutdown_tracing

# The data plane's Gateway builder, shared with tests/unit/dataplane.
from tests.unit.dataplane.conftest import make_gateway  # noqa: F401


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    install_test_exporter(exporter)
    yield exporter
    shutdown_tracing()
    exporter.clear()


@pytest.fixture
def tracing_off() -> Iterator[None]:
    shutdown_tracing()
    assert not TRACING.enabled
    yield
    shutdown_tracing()
