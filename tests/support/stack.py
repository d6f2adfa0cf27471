"""The split-mode stack for integration tests: control plane, ingest and data plane as
separate processes against the machine's Postgres and NATS, with a mock upstream."""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import NATS_URL, REDIS_URL, free_port, make_nats_names, pg_database
from tests.support.processes import SWITCHYARD, Proc, base_env, mock_upstream, switchyard

SECRET_KEY = "integration-test-secret"
ADMIN_EMAIL = "admin@test.local"
ADMIN_PASSWORD = "correct horse battery staple"
APP_KEY = "gk_" + "A" * 40
NARROW_KEY = "gk_" + "B" * 40


def config_yaml(mock_port: int, closed_port: int) -> str:
    return textwrap.dedent(
        f"""
        organizations:
          - name: acme
        providers:
          - slug: upstream
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: sk-upstream-secret
            models: [echo-model]
          - slug: upstream-tight
            api_format: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            api_key: sk-upstream-secret
            timeout_seconds: 0.5
          - slug: nowhere
            api_format: openai
            base_url: http://127.0.0.1:{closed_port}/v1
            connect_timeout_seconds: 1
        models:
          - name: gpt-test
            targets: [{{provider: upstream, model: echo-model}}]
          - name: broken
            targets: [{{provider: upstream, model: error-500}}]
          - name: bad-request-upstream
            targets: [{{provider: upstream, model: error-400}}]
          - name: slowpoke
            targets: [{{provider: upstream-tight, model: slow-3000}}]
          - name: unreachable
            targets: [{{provider: nowhere, model: whatever}}]
        prices:
          - {{model: gpt-test, unit: input_token, per_million: 1.0}}
          - {{model: gpt-test, unit: output_token, per_million: 2.0}}
        keys:
          - name: app
            org: acme
            value_env: APP_KEY
          - name: narrow
            org: acme
            value_env: NARROW_KEY
            models: [gpt-test]
        """
    )


@dataclass
class SplitStack:
    root: Path
    pg_url: str
    nats: dict[str, str]
    cp_port: int
    grpc_port: int
    dp_port: int
    ingest_port: int
    mock_port: int
    mock: Proc
    controlplane: Proc
    ingest: Proc
    dataplane: Proc
    # Added to every tier's environment (e.g. OTEL_*, SWITCHYARD_LOG_FORMAT).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def dp_url(self) -> str:
        return f"http://127.0.0.1:{self.dp_port}"

    @property
    def cp_url(self) -> str:
        return f"http://127.0.0.1:{self.cp_port}"

    def cli_env(self) -> dict[str, str]:
        return base_env(
            {
                "SWITCHYARD_CONTROLPLANE_URL": self.cp_url,
                "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
                "SWITCHYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "APP_KEY": APP_KEY,
                "NARROW_KEY": NARROW_KEY,
            }
        )

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [SWITCHYARD, *args], env=self.cli_env(), cwd=self.root, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"switchyard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def admin_token(self) -> str:
        response = httpx.post(
            f"{self.cp_url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def controlplane_env(self) -> dict[str, str]:
        return {
            "SWITCHYARD_DATABASE_URL": self.pg_url,
            "SWITCHYARD_SECRET_KEY": SECRET_KEY,
            "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
            "SWITCHYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SWITCHYARD_CONTROLPLANE_PORT": str(self.cp_port),
            "SWITCHYARD_GRPC_PORT": str(self.grpc_port),
        }

    def new_dataplane(self, name: str = "dataplane") -> Proc:
        env = {
            "SWITCHYARD_DATAPLANE_PORT": str(self.dp_port),
            "SWITCHYARD_CONTROLPLANE_GRPC": f"127.0.0.1:{self.grpc_port}",
            "SWITCHYARD_SECRET_KEY": SECRET_KEY,
            "SWITCHYARD_STATE_DIR": str(self.root / "dataplane-state"),
            "SWITCHYARD_NATS_URL": NATS_URL,
            "SWITCHYARD_NATS_STREAM": self.nats["stream"],
            "SWITCHYARD_USAGE_SUBJECT_PREFIX": self.nats["subject_prefix"],
            "SWITCHYARD_REDIS_URL": REDIS_URL,
            "SWITCHYARD_MAX_BODY_BYTES": "65536",
            # The mock upstream serves the test images on 127.0.0.1.
            "SWITCHYARD_IMAGE_FETCH_ALLOW_PRIVATE": "true",
        }
        proc = switchyard(name, ["serve", "dataplane"], {**env, **self.extra_env}, self.root)
        proc.health_url = f"{self.dp_url}/readyz"
        return proc

    def new_ingest(self, name: str = "ingest") -> Proc:
        env = {
            "SWITCHYARD_DATABASE_URL": self.pg_url,
            "SWITCHYARD_NATS_URL": NATS_URL,
            "SWITCHYARD_NATS_STREAM": self.nats["stream"],
            "SWITCHYARD_USAGE_SUBJECT_PREFIX": self.nats["subject_prefix"],
            "SWITCHYARD_NATS_DURABLE": self.nats["durable"],
            "SWITCHYARD_INGEST_PORT": str(self.ingest_port),
        }
        proc = switchyard(name, ["serve", "ingest"], {**env, **self.extra_env}, self.root)
        proc.health_url = f"http://127.0.0.1:{self.ingest_port}/readyz"
        return proc

    def new_controlplane(self, name: str = "controlplane") -> Proc:
        proc = switchyard(
            name, ["serve", "controlplane"], {**self.controlplane_env(), **self.extra_env}, self.root
        )
        proc.health_url = f"{self.cp_url}/readyz"
        return proc

    def usage_count(self) -> int:
        import psycopg

        with psycopg.connect(self.pg_url) as conn:
            row = conn.execute("SELECT count(*) FROM usage_events").fetchone()
            return int(row[0]) if row else 0


async def delete_stream(name: str) -> None:
    """Delete a test's JetStream stream and its dead-letter stream (either may be absent)."""
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
    try:
        for stream in (name, f"{name}_DEADLETTER"):
            with contextlib.suppress(Exception):
                await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@contextlib.contextmanager
def split_stack(
    root: Path,
    *,
    config: Callable[[int, int], str] = config_yaml,
    mock_module: str = "tests.support.mock_upstream",
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[SplitStack]:
    """Start the three tiers as processes, apply the test config through the CLI.

    `config(mock_port, closed_port)` renders the YAML applied; `mock_module` is the mock
    upstream server to run (the SDK contract tests use the every-protocol one)."""
    import asyncio

    procs: list[Proc] = []
    nats_names = make_nats_names()
    with pg_database() as pg_url:
        mock_port = free_port()
        stack = SplitStack(
            root=root,
            pg_url=pg_url,
            nats=nats_names,
            cp_port=free_port(),
            grpc_port=free_port(),
            dp_port=free_port(),
            ingest_port=free_port(),
            mock_port=mock_port,
            mock=mock_upstream(mock_port, root, mock_module),
            controlplane=None,  # type: ignore[arg-type]
            ingest=None,  # type: ignore[arg-type]
            dataplane=None,  # type: ignore[arg-type]
            extra_env=dict(extra_env or {}),
        )
        try:
            procs.append(stack.mock.start())
            migrate = subprocess.run(
                [SWITCHYARD, "migrate"],
                env=base_env(stack.controlplane_env()),
                capture_output=True,
                text=True,
            )
            assert migrate.returncode == 0, migrate.stderr
            stack.controlplane = stack.new_controlplane()
            procs.append(stack.controlplane.start())
            stack.mock.wait_ready()
            stack.controlplane.wait_ready()
            config_path = root / "switchyard.yaml"
            config_path.write_text(config(mock_port, free_port()))
            stack.cli("apply", "-f", str(config_path))
            stack.ingest = stack.new_ingest()
            procs.append(stack.ingest.start())
            stack.dataplane = stack.new_dataplane()
            procs.append(stack.dataplane.start())
            stack.ingest.wait_ready()
            stack.dataplane.wait_ready()
            yield stack
        finally:
            for proc in (stack.dataplane, stack.ingest, stack.controlplane, stack.mock, *procs):
                if proc is not None:
                    proc.kill()
            asyncio.run(delete_stream(nats_names["stream"]))
