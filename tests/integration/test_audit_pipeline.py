"""The audit log end to end through the real processes (issue 5 item 2): calls through a
data plane, their events over NATS into usage-ingest, the audit rows in Postgres, read
back through the control plane's audit API.

`acme` audits in full with JSON paths to redact; `quiet` audits nothing. A non-streamed
and a streamed call fail over from a 500ing target to a healthy one, so each row has a
two-attempt failover chain; tracing is on (a stand-in collector), so each has a trace id.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.otlp_collector import OtlpCollector
from tests.support.stack import APP_KEY, NARROW_KEY, SplitStack, split_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# A provider key pasted into a prompt: the mock echoes it back, so it is in both bodies.
PASTED_SECRET = "sk-" + "Z" * 32
REDACT_PATHS = ["$.user", "$.messages[0].content", "$.id"]


def _config(mock_port: int, closed_port: int) -> str:
    return textwrap.dedent(
        f"""
        organizations:
          - name: acme
            policy:
              audit: full
              audit_retention_days: 7
              audit_redact_paths: {json.dumps(REDACT_PATHS)}
              breaker: {{failures: 0}}
          - name: quiet
            policy: {{audit: "off"}}
        providers:
          - slug: flaky
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: sk-upstream-secret
          - slug: steady
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: sk-upstream-secret
        models:
          - name: gpt-test
            targets:
              - {{provider: flaky, model: error-500, priority: 0}}
              - {{provider: steady, model: echo-model, priority: 1}}
        prices:
          - {{model: gpt-test, unit: input_token, per_million: 1.0}}
          - {{model: gpt-test, unit: output_token, per_million: 2.0}}
        keys:
          - name: app
            org: acme
            value_env: APP_KEY
          - name: quiet-app
            org: quiet
            value_env: NARROW_KEY
        """
    )


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpCollector]:
    running = OtlpCollector().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector, services: None
) -> Iterator[SplitStack]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with split_stack(tmp_path_factory.mktemp("audit"), config=_config, extra_env=env) as running:
        yield running


def _chat(stack: SplitStack, key: str, trace_id: str, stream: bool) -> httpx.Response:
    body: dict[str, Any] = {
        "model": "gpt-test",
        "user": "alice@example.com",
        "messages": [
            {"role": "system", "content": "the confidential system prompt"},
            {"role": "user", "content": f"my key is {PASTED_SECRET} please"},
        ],
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return httpx.post(
        f"{stack.dp_url}/v1/chat/completions",
        headers={
            "Authorization": f"Bearer {key}",
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
            "x-team": "search",
        },
        json=body,
        timeout=30,
    )


def _sql(stack: SplitStack, query: str, *args: Any) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(stack.pg_url, row_factory=dict_row, autocommit=True) as conn:
        cursor = conn.execute(query, args)
        return list(cursor) if cursor.description is not None else []


def _api(stack: SplitStack, method: str, path: str, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.admin_token()}"}
    return httpx.request(method, f"{stack.cp_url}{path}", params=params, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def calls(stack: SplitStack) -> dict[str, str]:
    """Trace id of each call: the non-streamed, the streamed and the unaudited one."""
    traces = {name: uuid.uuid4().hex for name in ("plain", "stream", "quiet")}
    plain = _chat(stack, APP_KEY, traces["plain"], stream=False)
    assert plain.status_code == 200, plain.text
    streamed = _chat(stack, APP_KEY, traces["stream"], stream=True)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    quiet = _chat(stack, NARROW_KEY, traces["quiet"], stream=False)
    assert quiet.status_code == 200, quiet.text
    deadline = time.monotonic() + 30
    while len(_sql(stack, "SELECT id FROM usage_events")) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_sql(stack, "SELECT id FROM usage_events")) == 3
    return traces


def _audited(stack: SplitStack, org: str, **filters: Any) -> list[dict[str, Any]]:
    response = _api(stack, "GET", "/api/v1/audit", org=org, **filters)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _key_id(stack: SplitStack, name: str) -> str:
    keys = _api(stack, "GET", "/api/v1/keys").json()["data"]
    return str(next(k["id"] for k in keys if k["name"] == name))


def test_full_audit_keeps_redacted_bodies_and_call_metadata(stack: SplitStack, calls: dict[str, str]) -> None:
    rows = _audited(stack, "acme")
    assert len(rows) == 2
    app_id = _key_id(stack, "app")
    by_trace = {row["trace_id"]: row for row in rows}
    assert by_trace.keys() == {calls["plain"], calls["stream"]}
    for row in rows:
        assert (row["org"], row["key_id"], row["model"], row["status"]) == ("acme", app_id, "gpt-test", 200)
        assert row["client_ip"] == "127.0.0.1"
        assert row["level"] == "full"
        # The failover chain: the 500ing target first, then the one that answered.
        chain = [(a["provider"], a["model"], a["outcome"], a.get("status")) for a in row["attempts"]]
        assert chain == [("flaky", "error-500", "error", 500), ("steady", "echo-model", "ok", 200)]
        headers = row["request_headers"]
        assert headers["authorization"] == "[REDACTED]" and headers["x-team"] == "search"
        assert "request_body" not in row  # the list leaves bodies out

    plain = _api(stack, "GET", f"/api/v1/audit/{by_trace[calls['plain']]['id']}").json()
    request = json.loads(plain["request_body"])
    assert request["user"] == "[REDACTED]"
    assert request["messages"][0]["content"] == "[REDACTED]"
    assert request["messages"][1]["content"] == "my key is [REDACTED] please"
    response = json.loads(plain["response_body"])
    assert response["id"] == "[REDACTED]"
    assert response["choices"][0]["message"]["content"] == "echo: my key is [REDACTED] please"
    assert PASTED_SECRET not in plain["request_body"] + plain["response_body"]
    assert APP_KEY not in json.dumps(plain)


def test_streamed_answer_is_stored_reassembled(stack: SplitStack, calls: dict[str, str]) -> None:
    [row] = [r for r in _audited(stack, "acme") if r["trace_id"] == calls["stream"]]
    assert row["stream"] is True
    one = _api(stack, "GET", f"/api/v1/audit/{row['id']}").json()
    assert one["response_reassembled"] is True
    document = json.loads(one["response_body"])  # one JSON document, not SSE text
    assert document["object"] == "chat.completion" and document["id"] == "[REDACTED]"
    [choice] = document["choices"]
    assert choice["message"] == {"role": "assistant", "content": "echo: my key is [REDACTED] please"}
    assert choice["finish_reason"] == "stop"
    assert document["usage"]["completion_tokens"] > 0
    assert PASTED_SECRET not in one["response_body"]


def test_filters_narrow_the_list(stack: SplitStack, calls: dict[str, str]) -> None:
    app_id = _key_id(stack, "app")
    assert len(_audited(stack, "acme", key_id=app_id)) == 2
    assert _audited(stack, "acme", key_id=_key_id(stack, "quiet-app")) == []
    assert _audited(stack, "acme", model="nope") == []
    assert len(_audited(stack, "acme", status=200)) == 2
    assert _audited(stack, "acme", errors_only="true") == []
    assert _audited(stack, "acme", start="2000-01-01T00:00:00Z", end="2000-01-02T00:00:00Z") == []


def test_org_with_audit_off_has_no_audit_rows(stack: SplitStack, calls: dict[str, str]) -> None:
    [ledger] = _sql(stack, "SELECT id, org_id, trace_id FROM usage_events WHERE org = 'quiet'")
    assert ledger["trace_id"] == calls["quiet"]  # the call was metered ...
    assert _sql(stack, "SELECT event_id FROM audit_log WHERE org_id = %s", ledger["org_id"]) == []
    assert _audited(stack, "quiet") == []  # ... but not audited
    missing = _api(stack, "GET", f"/api/v1/audit/{ledger['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "audit_not_found"


def test_purge_applies_retention_and_keeps_the_ledger(stack: SplitStack, calls: dict[str, str]) -> None:
    by_trace = {row["trace_id"]: row["id"] for row in _audited(stack, "acme")}
    old, recent = by_trace[calls["plain"]], by_trace[calls["stream"]]
    # acme keeps 7 days: age one row past that, leave the other alone.
    _sql(stack, "UPDATE audit_log SET ts = now() - interval '8 days' WHERE event_id = %s", old)
    purged = _api(stack, "POST", "/api/v1/audit/purge")
    assert purged.status_code == 200 and purged.json() == {"deleted": {"acme": 1}}
    assert _api(stack, "GET", f"/api/v1/audit/{old}").status_code == 404
    assert _api(stack, "GET", f"/api/v1/audit/{recent}").status_code == 200
    # Billing's ledger keeps both calls.
    assert {r["id"] for r in _sql(stack, "SELECT id FROM usage_events WHERE org = 'acme'")} == {old, recent}
    assert _api(stack, "POST", "/api/v1/audit/purge").json() == {"deleted": {}}
