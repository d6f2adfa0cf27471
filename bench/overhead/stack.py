"""What the benchmark runs against: the mock upstream, a control plane on SQLite with
a config applied through `switchyard apply`, one data plane process, and (when it is
installed) Portkey's gateway as the comparison column."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from measure import Target
from procs import BenchError, Proc, Processes, free_port, wait_http
from scenarios import ANTHROPIC, LIMITED_KEY, OPENAI, Scenario

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UPSTREAM_KEY = "sk-mock-upstream"
ANTHROPIC_VERSION = "2023-06-01"
ADMIN_EMAIL = "bench@switchyard.local"
READY_TIMEOUT = 60.0


def switchyard_bin() -> str:
    candidate = Path(sys.executable).parent / "switchyard"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("switchyard")
    if found is None:
        raise BenchError("the switchyard command is not installed (make install)")
    return found


@dataclass
class Layout:
    upstream_cpu: str
    loadgen_cpu: str
    proxy_cpu: str


@dataclass
class Stack:
    """Names and secrets of one run; every value is unique to it."""

    work: Path
    nats_url: str
    redis_url: str
    secret_key: str = ""
    admin_password: str = ""
    app_key: str = ""
    limited_key: str = ""
    nats_stream: str = ""
    subject_prefix: str = ""
    redis_prefix: str = ""

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.secret_key = secrets.token_urlsafe(32)
        self.admin_password = secrets.token_urlsafe(18)
        self.app_key = "gk_" + secrets.token_hex(20)
        self.limited_key = "gk_" + secrets.token_hex(20)
        self.nats_stream = f"SYBENCH_{tag}"
        self.subject_prefix = f"sybench.{tag}.usage"
        self.redis_prefix = f"sybench:{tag}:"


def start_mock(
    procs: Processes, layout: Layout, chunks: int, name: str = "mock_upstream"
) -> tuple[Proc, int]:
    port = free_port()
    argv = [sys.executable, str(HERE / "mock_upstream.py"), "--port", str(port), "--chunks", str(chunks)]
    proc = procs.start(name, argv, cpu=layout.upstream_cpu)
    wait_http(proc, f"http://127.0.0.1:{port}/health", timeout=READY_TIMEOUT)
    return proc, port


def config_yaml(mock_port: int) -> str:
    return textwrap.dedent(
        f"""\
        organizations:
          - name: bench
        providers:
          - slug: mock
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: {UPSTREAM_KEY}
            models: [mock-gpt]
          - slug: mock-anthropic
            api_format: anthropic
            base_url: http://127.0.0.1:{mock_port}
            api_key: {UPSTREAM_KEY}
            models: [mock-claude]
          # Governance scenarios: two more providers on the same mock, so that the
          # routed models have three targets to rank.
          - slug: mock-b
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: {UPSTREAM_KEY}
          - slug: mock-c
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: {UPSTREAM_KEY}
        models:
          - name: mock-gpt
            capability: llm
            targets:
              - {{provider: mock, model: mock-gpt}}
          - name: mock-claude
            capability: llm
            targets:
              - {{provider: mock-anthropic, model: mock-claude}}
          - name: mock-gpt-cost
            capability: llm
            routing: lowest_cost
            targets: &three
              - {{provider: mock, model: mock-gpt}}
              - {{provider: mock-b, model: mock-gpt}}
              - {{provider: mock-c, model: mock-gpt}}
          - name: mock-gpt-latency
            capability: llm
            routing: least_latency
            targets: *three
        prices:
          - {{model: mock-gpt, unit: input_token, per_million: 0.5}}
          - {{model: mock-gpt, unit: output_token, per_million: 1.5}}
          - {{model: mock-claude, unit: input_token, per_million: 3}}
          - {{model: mock-claude, unit: output_token, per_million: 15}}
          - {{model: mock-gpt-cost, unit: input_token, per_million: 0.5}}
          - {{model: mock-gpt-cost, unit: output_token, per_million: 1.5}}
          - {{model: mock-gpt-latency, unit: input_token, per_million: 0.5}}
          - {{model: mock-gpt-latency, unit: output_token, per_million: 1.5}}
          # Target prices (what each provider charges): lowest_cost ranks by them.
          - {{model: mock/mock-gpt, unit: input_token, per_million: 0.3}}
          - {{model: mock/mock-gpt, unit: output_token, per_million: 1.2}}
          - {{model: mock-b/mock-gpt, unit: input_token, per_million: 0.2}}
          - {{model: mock-b/mock-gpt, unit: output_token, per_million: 0.8}}
          - {{model: mock-c/mock-gpt, unit: input_token, per_million: 0.25}}
          - {{model: mock-c/mock-gpt, unit: output_token, per_million: 1.0}}
        keys:
          - name: bench
            org: bench
            value_env: BENCH_APP_KEY
            scopes: [llm]
          # Limits far above what a run sends: every call is admitted, and pays for it.
          - name: bench-limited
            org: bench
            value_env: BENCH_LIMITED_KEY
            scopes: [llm]
            limits:
              rpm: 1000000000
              tpm: 1000000000000
              budget: {{amount: 1000000000, currency: USD, period: month}}
        """
    )


def _env(extra: dict[str, str]) -> dict[str, str]:
    # Only what the tiers need, so a developer's own SWITCHYARD_* variables cannot leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env.update(extra)
    return env


def start_controlplane(procs: Processes, stack: Stack, layout: Layout) -> tuple[Proc, int, int]:
    http_port, grpc_port = free_port(), free_port()
    env = _env(
        {
            "SWITCHYARD_DATABASE_URL": f"sqlite:///{stack.work / 'cp.db'}",
            "SWITCHYARD_SECRET_KEY": stack.secret_key,
            "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
            "SWITCHYARD_ADMIN_PASSWORD": stack.admin_password,
            "SWITCHYARD_CONTROLPLANE_HOST": "127.0.0.1",
            "SWITCHYARD_CONTROLPLANE_PORT": str(http_port),
            "SWITCHYARD_GRPC_HOST": "127.0.0.1",
            "SWITCHYARD_GRPC_PORT": str(grpc_port),
        }
    )
    # Off the proxy CPU: once the config is applied the control plane only idles.
    proc = procs.start(
        "controlplane",
        [switchyard_bin(), "serve", "controlplane"],
        cpu=layout.upstream_cpu,
        env=env,
        cwd=stack.work,
    )
    wait_http(proc, f"http://127.0.0.1:{http_port}/readyz", timeout=READY_TIMEOUT)
    return proc, http_port, grpc_port


def apply_config(stack: Stack, cp_port: int, mock_port: int) -> None:
    path = stack.work / "switchyard.yaml"
    path.write_text(config_yaml(mock_port))
    env = _env(
        {
            "SWITCHYARD_CONTROLPLANE_URL": f"http://127.0.0.1:{cp_port}",
            "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
            "SWITCHYARD_ADMIN_PASSWORD": stack.admin_password,
            "BENCH_APP_KEY": stack.app_key,
            "BENCH_LIMITED_KEY": stack.limited_key,
        }
    )
    done = subprocess.run(
        [switchyard_bin(), "apply", "-f", str(path)],
        env=env,
        cwd=stack.work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise BenchError(f"switchyard apply failed (rc={done.returncode}):\n{done.stdout}\n{done.stderr}")


def dataplane_env(stack: Stack, grpc_port: int, dp_port: int) -> dict[str, str]:
    return {
        "SWITCHYARD_DATAPLANE_HOST": "127.0.0.1",
        "SWITCHYARD_DATAPLANE_PORT": str(dp_port),
        "SWITCHYARD_CONTROLPLANE_GRPC": f"127.0.0.1:{grpc_port}",
        "SWITCHYARD_SECRET_KEY": stack.secret_key,
        "SWITCHYARD_STATE_DIR": str(stack.work / "dataplane-state"),
        "SWITCHYARD_NATS_URL": stack.nats_url,
        "SWITCHYARD_NATS_STREAM": stack.nats_stream,
        "SWITCHYARD_USAGE_SUBJECT_PREFIX": stack.subject_prefix,
        "SWITCHYARD_REDIS_URL": stack.redis_url,
        "SWITCHYARD_REDIS_PREFIX": stack.redis_prefix,
    }


def start_dataplane(procs: Processes, stack: Stack, layout: Layout, grpc_port: int) -> tuple[Proc, Target]:
    port = free_port()
    env = _env(dataplane_env(stack, grpc_port, port))
    proc = procs.start(
        "dataplane", [switchyard_bin(), "serve", "dataplane"], cpu=layout.proxy_cpu, env=env, cwd=stack.work
    )
    wait_http(proc, f"http://127.0.0.1:{port}/readyz", timeout=READY_TIMEOUT)
    target = Target(
        name="switchyard",
        base_url=f"http://127.0.0.1:{port}/v1",
        # As the official SDKs send them: Bearer for OpenAI, x-api-key for Anthropic.
        caller_headers={
            OPENAI: {"Authorization": f"Bearer {stack.app_key}"},
            ANTHROPIC: {"x-api-key": stack.app_key, "anthropic-version": ANTHROPIC_VERSION},
        },
        key_headers={LIMITED_KEY: {"Authorization": f"Bearer {stack.limited_key}"}},
        pid=proc.pid,
        spool_dir=stack.work / "dataplane-state" / "spool",
    )
    return proc, target


def portkey_script(portkey_dir: Path) -> Path | None:
    script = portkey_dir / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    return script if script.is_file() and shutil.which("node") else None


def start_portkey(procs: Processes, layout: Layout, portkey_dir: Path, mock_port: int) -> tuple[Proc, Target]:
    script = portkey_script(portkey_dir)
    if script is None:
        raise BenchError(f"Portkey is not installed under {portkey_dir} (or node is missing)")
    port = free_port()
    argv = ["node", "--require", str(HERE / "loopback.cjs"), str(script), f"--port={port}", "--headless"]
    proc = procs.start("portkey", argv, cpu=layout.proxy_cpu, env={**os.environ, "NODE_ENV": "production"})
    wait_http(proc, f"http://127.0.0.1:{port}/", timeout=READY_TIMEOUT, expect=None)
    custom_host = f"http://127.0.0.1:{mock_port}/v1"
    target = Target(
        name="portkey",
        base_url=f"http://127.0.0.1:{port}/v1",
        # Portkey takes the upstream from headers; it translates when the route's
        # protocol differs from the provider's.
        headers={"Authorization": f"Bearer {UPSTREAM_KEY}", "x-portkey-custom-host": custom_host},
        caller_headers={ANTHROPIC: {"anthropic-version": ANTHROPIC_VERSION}},
        upstream_headers={
            OPENAI: {"x-portkey-provider": "openai"},
            ANTHROPIC: {"x-portkey-provider": "anthropic"},
        },
        pid=proc.pid,
    )
    return proc, target


def direct_target(mock_port: int) -> Target:
    """The mock called directly, with the auth header of each protocol."""
    return Target(
        "direct",
        f"http://127.0.0.1:{mock_port}/v1",
        caller_headers={
            OPENAI: {"Authorization": f"Bearer {UPSTREAM_KEY}"},
            ANTHROPIC: {"x-api-key": UPSTREAM_KEY, "anthropic-version": ANTHROPIC_VERSION},
        },
        direct=True,
    )


def probe(target: Target, scenario: Scenario, *, timeout: float = 15.0) -> str | None:
    """Send the scenario's request until it gets a complete answer of the caller's
    protocol; None when it did, else what went wrong the last time."""
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(
            target.url(scenario),
            data=scenario.body().encode(),
            headers={"Content-Type": "application/json", **target.headers_for(scenario)},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                payload = response.read()
            if scenario.looks_complete(payload):
                return None
            last = f"unexpected answer: {payload[:300]!r}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except OSError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            return f"{target.name}: {scenario.name} probe request failed: {last}"
        time.sleep(0.3)


async def _delete_stream(nats_url: str, stream: str) -> None:
    import nats

    client = await nats.connect(nats_url, connect_timeout=3, max_reconnect_attempts=0)
    try:
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def delete_redis_prefix(redis_url: str, prefix: str) -> None:
    """Remove the run's limit, budget and breaker keys from Redis."""
    if not redis_url:
        return
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def delete_nats_stream(nats_url: str, stream: str) -> None:
    """Remove the run's usage stream; the data plane created it on first publish."""
    with contextlib.suppress(Exception):
        asyncio.run(asyncio.wait_for(_delete_stream(nats_url, stream), 10))
