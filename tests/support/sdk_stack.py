"""The split stack configured for the SDK contract tests: one provider per upstream
protocol, all pointing at the every-protocol mock (`tests.support.mock_upstreams`), and
public model names routed to each. Plus helpers to read what the mock received and
what usage the ingest wrote."""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.stack import SplitStack, split_stack

# Public model name -> what backs it. Every protocol the gateway speaks upstream.
UPSTREAMS = {
    "oa-model": "openai",  # OpenAI chat completions, passthrough for OpenAI callers
    "ds-model": "openai (DeepSeek-like reasoner, custom api_path)",
    "az-model": "azure",
    "claude-model": "anthropic",
    "gem-model": "gemini",
}
NO_USAGE = {"oa-model": "oa-nousage", "claude-model": "claude-nousage", "gem-model": "gem-nousage"}
RATE_LIMITED = {"oa-model": "oa-429", "claude-model": "claude-429", "gem-model": "gem-429"}

# Keys the gateway must send upstream, per provider (asserted on the mock's records).
UPSTREAM_KEYS = {
    "oa": "sk-oa-upstream",
    "ds": "sk-ds-upstream",
    "az": "az-upstream-key",
    "an": "sk-ant-upstream",
    "ge": "g-upstream-key",
    "xk": "xk-upstream-key",
}


def sdk_config_yaml(mock_port: int, _closed_port: int) -> str:
    mock = f"http://127.0.0.1:{mock_port}"
    return textwrap.dedent(
        f"""
        organizations:
          - name: acme
        providers:
          - {{slug: oa, api_format: openai, base_url: {mock}/v1, api_key: {UPSTREAM_KEYS["oa"]}}}
          - slug: ds
            api_format: openai
            base_url: {mock}
            api_path: /compatible-mode/v1/chat/completions
            api_key: {UPSTREAM_KEYS["ds"]}
          - slug: az
            api_format: azure
            base_url: {mock}
            api_path: "?api-version=2025-01-01-preview"
            api_key: {UPSTREAM_KEYS["az"]}
          - {{slug: an, api_format: anthropic, base_url: {mock}, api_key: {UPSTREAM_KEYS["an"]}}}
          - {{slug: ge, api_format: gemini, base_url: {mock}, api_key: {UPSTREAM_KEYS["ge"]}}}
          # OpenAI wire, raw key in a header of its own (auth_header) instead of Bearer.
          - slug: xk
            api_format: openai
            base_url: {mock}/v1
            auth_header: X-Api-Key
            api_key: {UPSTREAM_KEYS["xk"]}
        models:
          - {{name: oa-model, targets: [{{provider: oa, model: gpt-mock}}]}}
          - {{name: ds-model, targets: [{{provider: ds, model: deepseek-reasoner}}]}}
          - {{name: az-model, targets: [{{provider: az, model: my-deployment}}]}}
          - {{name: claude-model, targets: [{{provider: an, model: claude-mock}}]}}
          - {{name: gem-model, targets: [{{provider: ge, model: gemini-mock}}]}}
          - {{name: xk-model, targets: [{{provider: xk, model: gpt-mock}}]}}
          - {{name: oa-nousage, targets: [{{provider: oa, model: no-usage}}]}}
          - {{name: claude-nousage, targets: [{{provider: an, model: no-usage}}]}}
          - {{name: gem-nousage, targets: [{{provider: ge, model: no-usage}}]}}
          - {{name: oa-429, targets: [{{provider: oa, model: error-429}}]}}
          - {{name: claude-429, targets: [{{provider: an, model: error-429}}]}}
          - {{name: gem-429, targets: [{{provider: ge, model: error-429}}]}}
          - {{name: emb-model, capability: embedding, targets: [{{provider: oa, model: emb-mock}}]}}
          - {{name: az-emb, capability: embedding, targets: [{{provider: az, model: emb-deployment}}]}}
        keys:
          - name: app
            org: acme
            value_env: APP_KEY
            scopes: [llm, embedding]
        """
    )


@contextlib.contextmanager
def sdk_stack(root: Path) -> Iterator[SplitStack]:
    with split_stack(root, config=sdk_config_yaml, mock_module="tests.support.mock_upstreams") as stack:
        yield stack


def received(stack: SplitStack) -> list[dict[str, Any]]:
    """Every request the mock upstream got: method, path, query, headers, body."""
    response = httpx.get(f"http://127.0.0.1:{stack.mock_port}/_requests", timeout=10)
    response.raise_for_status()
    return list(response.json())


def last_received(stack: SplitStack) -> dict[str, Any]:
    requests = received(stack)
    assert requests, "the mock upstream received nothing"
    return requests[-1]


def clear_received(stack: SplitStack) -> None:
    httpx.delete(f"http://127.0.0.1:{stack.mock_port}/_requests", timeout=10).raise_for_status()


USAGE_COLUMNS = (
    "model",
    "provider",
    "upstream_model",
    "status",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "stream",
)


def wait_for_row_since(
    stack: SplitStack,
    model: str,
    since: float,
    timeout: float = 15.0,
    columns: tuple[str, ...] = USAGE_COLUMNS,
) -> dict[str, Any]:
    """The usage row of the call to `model` received after `since` (Unix seconds), once
    ingested. Counting rows instead would be fooled by an earlier call's row that is
    ingested late."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(stack.pg_url) as conn:
            row = conn.execute(
                f"SELECT {', '.join(columns)} FROM usage_events"
                " WHERE model = %s AND ts >= to_timestamp(%s) ORDER BY ts DESC LIMIT 1",
                (model, since),
            ).fetchone()
        if row is not None:
            return dict(zip(columns, row, strict=True))
        if time.monotonic() > deadline:
            raise AssertionError(f"no usage row for {model!r} since {since}")
        time.sleep(0.1)
