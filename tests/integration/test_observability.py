"""Observability through the real processes: one trace follows a call from the data
plane through NATS (W3C headers, kept by the disk spool) into the ingest write; every
tier's /metrics moves with the traffic; log lines are JSON and carry the call's request
id and trace id.

Spans go to a stand-in OTLP collector in this process (tests/support/otlp_collector.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import NATS_URL, free_port, unique_name
from tests.support.otlp_collector import CollectedSpan, OtlpCollector
from tests.support.processes import Proc, switchyard
from tests.support.stack import APP_KEY, SplitStack, config_yaml, split_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NATS_SERVER = "/usr/sbin/nats-server"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpCollector]:
    running = OtlpCollector().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector, services: None
) -> Iterator[SplitStack]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        # Export within a fraction of a second instead of the default 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "SWITCHYARD_LOG_FORMAT": "json",
        "SWITCHYARD_ACCESS_LOG": "true",
        # A short ack wait keeps the lag probe's view fresh.
        "SWITCHYARD_BATCH_TIMEOUT": "0.2",
    }
    with split_stack(tmp_path_factory.mktemp("observability"), extra_env=env) as running:
        yield running


def _trace_headers() -> tuple[str, dict[str, str]]:
    trace_id = uuid.uuid4().hex
    return trace_id, {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}


def _chat(
    url: str, model: str = "gpt-test", headers: dict[str, str] | None = None, key: str = APP_KEY
) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "observe me"}]},
        headers={"authorization": f"Bearer {key}", **(headers or {})},
        timeout=20,
    )


def _scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _wait(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _json_lines(proc: Proc) -> list[dict[str, Any]]:
    entries = []
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def _ingest_url(stack: SplitStack) -> str:
    return f"http://127.0.0.1:{stack.ingest_port}"


# --- traces -------------------------------------------------------------------------


def test_one_trace_follows_a_call_through_nats_into_the_ingest_write(
    stack: SplitStack, collector: OtlpCollector
) -> None:
    trace_id, headers = _trace_headers()
    response = _chat(stack.dp_url, headers=headers)
    assert response.status_code == 200

    def in_trace(kind: str, service: str) -> Callable[[CollectedSpan], bool]:
        return lambda s: s.trace_id == trace_id and s.kind == kind and s.service == service

    [server] = collector.wait_for(in_trace("server", "switchyard-dataplane"))
    [attempt] = collector.wait_for(in_trace("client", "switchyard-dataplane"))
    [producer] = collector.wait_for(in_trace("producer", "switchyard-dataplane"))
    # The ingest's span for this event is in the CALL's trace, child of the producer span
    # whose context crossed NATS in the message headers.
    [consumed] = collector.wait_for(in_trace("consumer", "switchyard-ingest"))

    assert server.name == "POST /v1/chat/completions"
    assert attempt.parent_span_id == server.span_id
    assert producer.parent_span_id == server.span_id
    assert producer.attributes["messaging.destination.name"].startswith(stack.nats["subject_prefix"])
    event_id = producer.attributes["messaging.message.id"]
    assert consumed.parent_span_id == producer.span_id
    assert consumed.attributes["switchyard.ingest.outcome"] == "stored"
    assert consumed.attributes["messaging.message.id"] == event_id

    # The batch write span links the event's producer span, and the event span links back.
    [batch] = collector.wait_for(
        lambda s: s.name == "ingest usage batch" and any(link[0] == trace_id for link in s.links)
    )
    assert (trace_id, producer.span_id) in {(t, sp) for t, sp, _ in batch.links}
    assert batch.attributes["switchyard.ingest.inserted"] >= 1
    assert [(batch.trace_id, batch.span_id)] == [(t, sp) for t, sp, _ in consumed.links]

    # The stored row names the same trace.
    import psycopg

    with psycopg.connect(stack.pg_url) as conn:
        row = conn.execute("SELECT trace_id FROM usage_events WHERE id = %s", (event_id,)).fetchone()
    assert row is not None and row[0] == trace_id


def test_admin_requests_are_traced(stack: SplitStack, collector: OtlpCollector) -> None:
    token = stack.admin_token()
    trace_id, headers = _trace_headers()
    response = httpx.get(
        f"{stack.cp_url}/api/v1/organizations", headers={"authorization": f"Bearer {token}", **headers}
    )
    assert response.status_code == 200
    found = collector.wait_for(
        lambda s: s.trace_id == trace_id and s.service == "switchyard-controlplane" and s.kind == "server"
    )
    [span] = found
    assert span.name == "GET /api/v1/organizations"


# --- metrics ------------------------------------------------------------------------


def test_dataplane_metrics_move_with_calls(stack: SplitStack) -> None:
    before = _scrape(stack.dp_url)
    assert _chat(stack.dp_url).status_code == 200
    assert _chat(stack.dp_url, model="broken").status_code == 500
    assert _chat(stack.dp_url, model="unreachable").status_code == 502
    after = _scrape(stack.dp_url)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("switchyard_dataplane_requests_total", route="chat_completions", status="200") == 1
    assert moved("switchyard_dataplane_requests_total", route="chat_completions", status="500") == 1
    assert moved("switchyard_dataplane_request_seconds_count", route="chat_completions") == 3
    assert moved("switchyard_dataplane_request_seconds_sum", route="chat_completions") > 0
    # Only the successful call started an answer.
    assert moved("switchyard_dataplane_time_to_first_byte_seconds_count", route="chat_completions") == 1
    assert (
        moved("switchyard_dataplane_upstream_errors_total", provider="upstream", **{"class": "http_5xx"}) == 1
    )
    assert (
        moved("switchyard_dataplane_upstream_errors_total", provider="nowhere", **{"class": "unreachable"})
        == 1
    )
    assert moved("switchyard_dataplane_usage_events_total") == 3
    # State read at scrape time.
    assert _value(after, "switchyard_dataplane_snapshot_version") >= 1
    assert _value(after, "switchyard_dataplane_snapshot_age_seconds") > 0
    assert ("switchyard_dataplane_spool_depth", frozenset()) in after
    _wait(
        lambda: (
            _value(_scrape(stack.dp_url), "switchyard_dataplane_usage_events_published_total")
            >= _value(after, "switchyard_dataplane_usage_events_total")
        ),
        what="the usage events to be acknowledged by JetStream",
    )


def test_ingest_metrics_move_with_events(stack: SplitStack) -> None:
    url = _ingest_url(stack)
    before = _scrape(url)
    for _ in range(3):
        assert _chat(stack.dp_url).status_code == 200

    def consumed() -> float:
        return _value(_scrape(url), "switchyard_ingest_events_ingested_total")

    _wait(lambda: consumed() - _value(before, "switchyard_ingest_events_ingested_total") >= 3, what="ingest")
    after = _scrape(url)
    assert (
        _value(after, "switchyard_ingest_events_consumed_total")
        - _value(before, "switchyard_ingest_events_consumed_total")
        >= 3
    )
    assert _value(after, "switchyard_ingest_batch_size_count") > _value(
        before, "switchyard_ingest_batch_size_count"
    )
    assert _value(after, "switchyard_ingest_batch_size_sum") >= 3
    # The lag gauges were refreshed from JetStream by this scrape: caught up.
    assert _value(after, "switchyard_ingest_lag_probe_errors_total") == 0
    assert ("switchyard_ingest_pending_events", frozenset()) in after
    assert _value(after, "switchyard_ingest_oldest_unacked_age_seconds") < 60
    assert ("switchyard_ingest_dead_lettered_total", frozenset()) in after


def test_controlplane_metrics_count_connected_dataplanes_and_pushes(
    stack: SplitStack, tmp_path: Path
) -> None:
    before = _scrape(stack.cp_url)
    assert _value(before, "switchyard_controlplane_connected_dataplanes") >= 1
    assert _value(before, "switchyard_controlplane_snapshot_pushes_total") >= 1
    version = _value(before, "switchyard_controlplane_snapshot_version")

    # A config change is a new snapshot version, pushed to the connected data plane.
    config_path = tmp_path / "more.yaml"
    config_path.write_text(
        config_yaml(stack.mock_port, free_port()).replace(
            "prices:\n", "prices:\n  - {model: broken, unit: input_token, per_million: 3.0}\n"
        )
    )
    stack.cli("apply", "-f", str(config_path))
    _wait(
        lambda: (
            _value(_scrape(stack.cp_url), "switchyard_controlplane_snapshot_pushes_total")
            > _value(before, "switchyard_controlplane_snapshot_pushes_total")
        ),
        what="a snapshot push",
    )
    assert _value(_scrape(stack.cp_url), "switchyard_controlplane_snapshot_version") > version
    _wait(
        lambda: _value(_scrape(stack.dp_url), "switchyard_dataplane_snapshot_version") > version,
        what="the data plane to serve the new version",
    )


# --- logs ---------------------------------------------------------------------------


def test_log_lines_are_json_and_carry_the_call_ids(stack: SplitStack) -> None:
    trace_id, headers = _trace_headers()
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    response = _chat(stack.dp_url, headers={**headers, "x-request-id": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id  # honoured and echoed
    generated = _chat(stack.dp_url).headers["x-request-id"]
    assert generated.startswith("req_")
    # Errors and cold routes carry one too.
    assert _chat(stack.dp_url, key="gk_wrong").headers["x-request-id"].startswith("req_")
    assert httpx.get(f"{stack.dp_url}/readyz").headers["x-request-id"].startswith("req_")

    def call_line() -> dict[str, Any] | None:
        for entry in _json_lines(stack.dataplane):
            if entry.get("request_id") == request_id:
                return entry
        return None

    _wait(lambda: call_line() is not None, what="the call's log line")
    line = call_line()
    assert line is not None
    assert line["trace_id"] == trace_id
    assert line["logger"] == "switchyard.access" and line["level"] == "INFO"
    assert line["status"] == 200 and line["model"] == "gpt-test"
    assert {"timestamp", "message"} <= line.keys()

    # The control plane: an admin request's log line has its request id and trace id.
    cp_request = f"req-{uuid.uuid4().hex[:12]}"
    cp_trace, cp_headers = _trace_headers()
    answer = httpx.get(
        f"{stack.cp_url}/api/v1/organizations", headers={"x-request-id": cp_request, **cp_headers}
    )
    assert answer.status_code == 401 and answer.headers["x-request-id"] == cp_request
    _wait(
        lambda: any(
            e.get("request_id") == cp_request and e.get("trace_id") == cp_trace
            for e in _json_lines(stack.controlplane)
        ),
        what="the admin request's log line",
    )
    # Every tier writes JSON lines with the four standard members.
    for proc in (stack.dataplane, stack.controlplane, stack.ingest):
        entries = _json_lines(proc)
        assert entries, f"{proc.name} wrote no JSON log line"
        assert all({"timestamp", "level", "logger", "message"} <= e.keys() for e in entries)


# --- the spool keeps the trace context ----------------------------------------------


class _Nats:
    """A private JetStream server (this test stops the data plane's NATS)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.root / "nats.log").open("ab")
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-js", "-sd", str(self.root / "js"), "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


async def _first_message(url: str, stream: str) -> dict[str, str]:
    nc = await nats.connect(url, connect_timeout=2)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 20
        while True:
            try:
                if (await js.stream_info(stream)).state.messages >= 1:
                    break
            except Exception:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise AssertionError("the spooled event never reached JetStream")
            await asyncio.sleep(0.1)
        message = await js.get_msg(stream, seq=1)
        return dict(message.headers or {})
    finally:
        await nc.close()


def test_spooled_event_keeps_its_trace_context(
    stack: SplitStack, collector: OtlpCollector, tmp_path: Path
) -> None:
    if not Path(NATS_SERVER).exists():
        pytest.skip(f"{NATS_SERVER} is not installed")
    nats_server = _Nats(tmp_path)  # not started: the data plane spools
    port = free_port()
    stream = unique_name("SYOBS").upper()
    env = dict(stack.new_dataplane().env)
    env.update(
        {
            "SWITCHYARD_DATAPLANE_PORT": str(port),
            "SWITCHYARD_STATE_DIR": str(tmp_path / "state"),
            "SWITCHYARD_NATS_URL": nats_server.url,
            "SWITCHYARD_NATS_STREAM": stream,
        }
    )
    url = f"http://127.0.0.1:{port}"

    def dataplane(name: str) -> Proc:
        proc = switchyard(name, ["serve", "dataplane"], env, tmp_path)
        proc.health_url = f"{url}/readyz"
        return proc.start().wait_ready()

    first = dataplane("dataplane-spool-1")
    try:
        trace_id, headers = _trace_headers()
        assert _chat(url, headers=headers).status_code == 200
        # Past the publisher's grace period the event is on disk.
        _wait(lambda: _value(_scrape(url), "switchyard_dataplane_spool_depth") == 1, what="the spool")
        [producer] = collector.wait_for(
            lambda s: s.trace_id == trace_id and s.kind == "producer" and s.service == "switchyard-dataplane"
        )
    finally:
        first.stop()
    nats_server.start()
    second = dataplane("dataplane-spool-2")  # replays the spool of the first
    try:
        message_headers = asyncio.run(_first_message(nats_server.url, stream))
        assert message_headers["traceparent"] == f"00-{trace_id}-{producer.span_id}-01"
        _wait(
            lambda: _value(_scrape(url), "switchyard_dataplane_spool_depth") == 0, what="the spool to drain"
        )
        assert _value(_scrape(url), "switchyard_dataplane_usage_events_replayed_total") == 1
    finally:
        second.stop()
        nats_server.stop()


# --- lag, against JetStream directly -------------------------------------------------


async def test_lag_probe_reports_pending_unacked_and_the_oldest_age(services: None) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig
    from switchyard_ingest.lag import probe_jetstream_lag
    from switchyard_ingest.metrics import IngestMetrics
    from switchyard_ingest.settings import IngestSettings

    tag = uuid.uuid4().hex[:10]
    settings = IngestSettings(
        nats_stream=f"SYLAG_{tag}", usage_subject_prefix=f"sylag.{tag}", nats_durable=f"lag_{tag}"
    )
    metrics = IngestMetrics()

    def gauge(name: str) -> float | None:
        return metrics.registry.get_sample_value(name)

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    try:
        await js.add_stream(name=settings.nats_stream, subjects=[f"{settings.usage_subject_prefix}.>"])
        await js.add_consumer(
            settings.nats_stream,
            ConsumerConfig(durable_name=settings.nats_durable, ack_policy=AckPolicy.EXPLICIT),
        )
        assert await probe_jetstream_lag(nc, settings, metrics)
        assert (
            gauge("switchyard_ingest_pending_events") == 0
            and gauge("switchyard_ingest_oldest_unacked_age_seconds") == 0
        )

        for i in range(3):
            await js.publish(f"{settings.usage_subject_prefix}.acme", b"{}", headers={"Nats-Msg-Id": f"m{i}"})
        await asyncio.sleep(1.1)
        assert await probe_jetstream_lag(nc, settings, metrics)
        assert gauge("switchyard_ingest_pending_events") == 3
        assert gauge("switchyard_ingest_oldest_unacked_age_seconds") >= 1.0

        sub = await js.pull_subscribe_bind(durable=settings.nats_durable, stream=settings.nats_stream)
        [first] = await sub.fetch(1, timeout=5)
        assert await probe_jetstream_lag(nc, settings, metrics)
        assert (gauge("switchyard_ingest_pending_events"), gauge("switchyard_ingest_unacked_events")) == (
            2,
            1,
        )
        assert gauge("switchyard_ingest_oldest_unacked_age_seconds") >= 1.0
        await first.ack_sync()
        for msg in await sub.fetch(2, timeout=5):
            await msg.ack_sync()
        assert await probe_jetstream_lag(nc, settings, metrics)
        assert (gauge("switchyard_ingest_pending_events"), gauge("switchyard_ingest_unacked_events")) == (
            0,
            0,
        )
        assert gauge("switchyard_ingest_oldest_unacked_age_seconds") == 0
    finally:
        await js.delete_stream(settings.nats_stream)
        await nc.close()
    # NATS gone: the probe says so and keeps the last values.
    assert not await probe_jetstream_lag(nc, settings, metrics)
    assert gauge("switchyard_ingest_lag_probe_errors_total") == 1
