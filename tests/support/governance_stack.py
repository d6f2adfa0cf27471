"""The multi-process stack of the governance tests (issue 4): one control plane on a
fresh Postgres database, TWO (or more) data-plane processes sharing one Redis under a
unique key prefix, a controllable faulty mock upstream, and a tap on the test's own
JetStream stream to read the usage events.

Config goes through the REST apply endpoint (or, for the initial document,
`switchyard apply -f` with YAML and key values from `value_env`); `apply` waits until
every data plane has loaded the resulting snapshot version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import NATS_URL, REDIS_URL, free_port, make_nats_names, pg_database, unique_name
from tests.support.mock_upstreams.faulty import FaultyControl
from tests.support.processes import SWITCHYARD, Proc, base_env, switchyard
from tests.support.stack import delete_stream
from tests.support.usage_tap import UsageTap

__all__ = [
    "Call",
    "GovStack",
    "Ports",
    "attempt_chain",
    "error_of",
    "governance_stack",
    "mock_provider",
    "new_key",
    "status_counts",
    "target",
    "token_prices",
]

SECRET_KEY = "governance-test-secret"
ADMIN_EMAIL = "admin@gov.test"
ADMIN_PASSWORD = "governance tests password"
ANTHROPIC_VERSION = "2023-06-01"


def new_key() -> str:
    return "gk_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Ports:
    mock: int  # the faulty mock upstream
    closed: int  # nothing listens here (connect errors)

    @property
    def mock_url(self) -> str:
        return f"http://127.0.0.1:{self.mock}/v1"

    @property
    def closed_url(self) -> str:
        return f"http://127.0.0.1:{self.closed}/v1"


def mock_provider(ports: Ports, slug: str, **extra: Any) -> dict[str, Any]:
    """A provider on the faulty mock; its calls are counted under "<slug>/<model>"."""
    return {
        "slug": slug,
        "api_format": "openai",
        "base_url": ports.mock_url,
        "api_key": f"sk-{slug}",
        "headers": {"x-mock-tag": slug},
        **extra,
    }


def target(provider: str, model: str, priority: int = 0, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, "priority": priority, **extra}


def token_prices(model: str, input_pm: float, output_pm: float) -> list[dict[str, Any]]:
    """Input and output token prices (per million) of a public model or a
    `<provider>/<upstream-model>` target."""
    return [
        {"model": model, "unit": "input_token", "per_million": input_pm},
        {"model": model, "unit": "output_token", "per_million": output_pm},
    ]


@dataclass
class Call:
    """One request to a data plane, for `GovStack.blast`."""

    key: str
    model: str
    dp: int = 0
    content: str = "hello"
    protocol: str = "openai"  # "openai" -> /v1/chat/completions, "anthropic" -> /v1/messages
    stream: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class GovStack:
    root: Path
    pg_url: str
    nats: dict[str, str]
    redis_url: str
    redis_prefix: str
    ports: Ports
    cp_port: int
    grpc_port: int
    dp_ports: list[int]
    mock: FaultyControl
    tap: UsageTap
    procs: dict[str, Proc] = field(default_factory=dict)
    dp_env_extra: dict[str, str] = field(default_factory=dict)
    _token: str | None = None

    # --- process management -------------------------------------------------------

    @property
    def cp_url(self) -> str:
        return f"http://127.0.0.1:{self.cp_port}"

    def dp_url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.dp_ports[i]}"

    def controlplane_env(self) -> dict[str, str]:
        return {
            "SWITCHYARD_DATABASE_URL": self.pg_url,
            "SWITCHYARD_SECRET_KEY": SECRET_KEY,
            "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
            "SWITCHYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SWITCHYARD_CONTROLPLANE_PORT": str(self.cp_port),
            "SWITCHYARD_GRPC_PORT": str(self.grpc_port),
            "SWITCHYARD_SNAPSHOT_POLL_INTERVAL": "0.1",
            "SWITCHYARD_REDIS_URL": self.redis_url,
            "SWITCHYARD_REDIS_PREFIX": self.redis_prefix,
        }

    def dataplane_env(self, i: int) -> dict[str, str]:
        return {
            "SWITCHYARD_DATAPLANE_PORT": str(self.dp_ports[i]),
            "SWITCHYARD_DATAPLANE_ID": f"gov-dp-{i}",
            "SWITCHYARD_CONTROLPLANE_GRPC": f"127.0.0.1:{self.grpc_port}",
            "SWITCHYARD_SECRET_KEY": SECRET_KEY,
            "SWITCHYARD_STATE_DIR": str(self.root / f"dataplane-{i}"),
            "SWITCHYARD_NATS_URL": NATS_URL,
            "SWITCHYARD_NATS_STREAM": self.nats["stream"],
            "SWITCHYARD_USAGE_SUBJECT_PREFIX": self.nats["subject_prefix"],
            "SWITCHYARD_REDIS_URL": self.redis_url,
            "SWITCHYARD_REDIS_PREFIX": self.redis_prefix,
            # Tracing on but never sampled (nothing is exported): the usage event then
            # carries the trace id of the caller's `traceparent`, which is how a test
            # finds the event of one call (event_for).
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{self.ports.closed}/v1/traces",
            "OTEL_TRACES_SAMPLER": "always_off",
            "SWITCHYARD_SNAPSHOT_BACKOFF_MAX": "0.5",
            **self.dp_env_extra,
        }

    def start_dataplane(self, i: int) -> Proc:
        proc = switchyard(f"dataplane-{i}", ["serve", "dataplane"], self.dataplane_env(i), self.root)
        proc.health_url = f"{self.dp_url(i)}/readyz"
        self.procs[f"dataplane-{i}"] = proc.start()
        return proc

    def dataplane(self, i: int) -> Proc:
        return self.procs[f"dataplane-{i}"]

    # --- control plane ------------------------------------------------------------

    def token(self) -> str:
        if self._token is None:
            response = httpx.post(
                f"{self.cp_url}/api/v1/auth/login",
                json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                timeout=10,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.cp_url}/api/v1{path}", headers=headers, timeout=15, **kwargs)

    def key_id(self, name: str, org: str | None = None) -> str:
        response = self.api("GET", "/keys")
        assert response.status_code == 200, response.text
        found = [k["id"] for k in response.json()["data"] if k["name"] == name and org in (None, k["org"])]
        assert len(found) == 1, f"key {name!r}: {found}"
        return str(found[0])

    def apply(self, document: dict[str, Any], *, wait: bool = True) -> dict[str, Any]:
        """Apply a config document through the REST API; wait until every data plane
        serves the resulting snapshot."""
        response = self.api("POST", "/config/apply", json={"document": document})
        assert response.status_code == 200, f"apply failed: {response.status_code} {response.text}"
        result: dict[str, Any] = response.json()
        if wait and result.get("version") is not None:
            self.wait_synced(int(result["version"]))
        return result

    def apply_file(self, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """Apply through `switchyard apply -f` (YAML); key values travel as value_env."""
        env: dict[str, str] = {}
        keys = []
        for i, key in enumerate(document.get("keys", [])):
            key = dict(key)
            value = key.pop("value", None)
            if value is not None:
                env[f"GOV_KEY_{i}"] = value
                key["value_env"] = f"GOV_KEY_{i}"
            keys.append(key)
        path = self.root / f"config-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump({**document, "keys": keys}, sort_keys=False))
        return self.cli("apply", "-f", str(path), env=env)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `switchyard ...` against the control plane; fails the test on a non-zero exit."""
        cli_env = base_env(
            {
                "SWITCHYARD_CONTROLPLANE_URL": self.cp_url,
                "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
                "SWITCHYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                **(env or {}),
            }
        )
        result = subprocess.run(
            [SWITCHYARD, *args], env=cli_env, cwd=self.root, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (
            f"switchyard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
        return result

    def config_version(self) -> int:
        """The version the data planes must reach: what a no-op dry-run apply reports."""
        response = self.api("POST", "/config/apply", json={"document": {}, "dry_run": True})
        assert response.status_code == 200, response.text
        return int(response.json()["version"])

    def wait_synced(self, version: int | None = None, timeout: float = 10.0) -> None:
        version = self.config_version() if version is None else version
        deadline = time.monotonic() + timeout
        pending = list(range(len(self.dp_ports)))
        last: dict[int, Any] = {}
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    ready = httpx.get(f"{self.dp_url(i)}/readyz", timeout=2).json()
                    last[i] = ready
                    if int(ready.get("snapshot_version") or 0) >= version:
                        pending.remove(i)
            if pending:
                time.sleep(0.05)
        assert not pending, f"data planes {pending} did not reach snapshot version {version}: {last}"

    # --- data plane calls ---------------------------------------------------------

    @staticmethod
    def request_parts(call: Call) -> tuple[str, dict[str, str], dict[str, Any]]:
        body: dict[str, Any] = {"model": call.model, "messages": [{"role": "user", "content": call.content}]}
        # A fresh W3C trace id per call: the usage event carries it (event_for).
        trace = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
        if call.protocol == "anthropic":
            path = "/v1/messages"
            headers = {"x-api-key": call.key, "anthropic-version": ANTHROPIC_VERSION}
            body["max_tokens"] = 64
        else:
            path = "/v1/chat/completions"
            headers = {"authorization": f"Bearer {call.key}"}
        if call.stream:
            body["stream"] = True
        body.update(call.extra)
        headers.update(trace)
        headers.update(call.headers)
        return path, headers, body

    def call(self, call: Call, *, timeout: float = 20.0) -> httpx.Response:
        path, headers, body = self.request_parts(call)
        return httpx.post(f"{self.dp_url(call.dp)}{path}", json=body, headers=headers, timeout=timeout)

    def chat(self, key: str, model: str, dp: int = 0, timeout: float = 20.0, **kwargs: Any) -> httpx.Response:
        return self.call(Call(key=key, model=model, dp=dp, **kwargs), timeout=timeout)

    def messages(
        self, key: str, model: str, dp: int = 0, timeout: float = 20.0, **kwargs: Any
    ) -> httpx.Response:
        return self.call(Call(key=key, model=model, dp=dp, protocol="anthropic", **kwargs), timeout=timeout)

    def blast(
        self, calls: Sequence[Call], *, concurrency: int = 50, timeout: float = 30.0
    ) -> list[httpx.Response]:
        """Send every call at once (at most `concurrency` in flight); answers in order.
        Streamed answers are read to the end."""

        async def run() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            gate = asyncio.Semaphore(concurrency)
            async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

                async def one(call: Call) -> httpx.Response:
                    path, headers, body = self.request_parts(call)
                    async with gate:
                        response = await client.post(
                            f"{self.dp_url(call.dp)}{path}", json=body, headers=headers
                        )
                        await response.aread()
                        return response

                return list(await asyncio.gather(*(one(c) for c in calls)))

        return asyncio.run(run())

    def event_for(self, response: httpx.Response, timeout: float = 10.0) -> dict[str, Any]:
        """The usage event of the call that produced `response` (by its trace id)."""
        trace_id = response.request.headers["traceparent"].split("-")[1]
        return self.tap.wait(1, timeout=timeout, trace_id=trace_id)[0]

    def readyz(self, i: int = 0) -> httpx.Response:
        return httpx.get(f"{self.dp_url(i)}/readyz", timeout=5)

    # --- Redis --------------------------------------------------------------------

    def redis_keys(self) -> list[str]:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            return [k.decode() for k in client.scan_iter(match=f"{self.redis_prefix}*", count=1000)]
        finally:
            client.close()


def _cleanup_redis(url: str, prefix: str) -> None:
    import redis

    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        try:
            batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if batch:
                client.delete(*batch)
        finally:
            client.close()


@contextlib.contextmanager
def governance_stack(
    root: Path,
    document: Callable[[Ports], dict[str, Any]],
    *,
    dataplanes: int = 2,
    redis_url: str = REDIS_URL,
    dp_env: dict[str, str] | None = None,
    apply_with_cli: bool = False,
) -> Iterator[GovStack]:
    """Start the mock, the control plane and `dataplanes` data planes; apply
    `document(ports)` through the REST API (`apply_with_cli`: as YAML with
    `switchyard apply -f`); stop everything on exit."""
    nats_names = make_nats_names()
    with pg_database() as pg_url:
        ports = Ports(mock=free_port(), closed=free_port())
        stack = GovStack(
            root=root,
            pg_url=pg_url,
            nats=nats_names,
            redis_url=redis_url,
            redis_prefix=unique_name("sygov") + ":",
            ports=ports,
            cp_port=free_port(),
            grpc_port=free_port(),
            dp_ports=[free_port() for _ in range(dataplanes)],
            mock=FaultyControl(ports.mock),
            tap=UsageTap(NATS_URL, nats_names["stream"]),
            dp_env_extra=dict(dp_env or {}),
        )
        try:
            import sys

            mock = Proc(
                name="faulty-upstream",
                args=[sys.executable, "-m", "tests.support.mock_upstreams.faulty", "--port", str(ports.mock)],
                env=base_env({}),
                log_path=root / "faulty-upstream.log",
                health_url=f"http://127.0.0.1:{ports.mock}/v1/models",
            )
            stack.procs["mock"] = mock.start()
            # The control plane migrates its fresh database itself (SWITCHYARD_AUTO_MIGRATE).
            cp = switchyard("controlplane", ["serve", "controlplane"], stack.controlplane_env(), root)
            cp.health_url = f"{stack.cp_url}/readyz"
            stack.procs["controlplane"] = cp.start()
            # Data planes boot meanwhile (they retry the control plane every <= 0.5 s).
            for i in range(dataplanes):
                stack.start_dataplane(i)
            mock.wait_ready()
            cp.wait_ready()
            if apply_with_cli:
                stack.apply_file(document(ports))
            else:
                stack.apply(document(ports), wait=False)
            for i in range(dataplanes):
                stack.dataplane(i).wait_ready()
            stack.wait_synced()
            yield stack
        finally:
            for proc in reversed(list(stack.procs.values())):
                proc.kill()
            _cleanup_redis(redis_url, stack.redis_prefix)
            with contextlib.suppress(Exception):
                asyncio.run(asyncio.wait_for(delete_stream(nats_names["stream"]), 10))


def attempt_chain(event: dict[str, Any]) -> list[tuple[str, str]]:
    """A usage event's attempts as (provider, outcome), in order."""
    return [(a["provider"], a["outcome"]) for a in event["attempts"]]


def status_counts(answers: Sequence[httpx.Response]) -> Counter[int]:
    return Counter(a.status_code for a in answers)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error object of an OpenAI or Anthropic error body."""
    data = json.loads(response.content)
    if data.get("type") == "error":
        return dict(data["error"])
    return dict(data["error"])
