"""Run the compose stack's Switchyard services as real processes, without Docker.

No Docker engine exists here, so this is the closest check of deploy/compose: each
tier runs the `command` and `environment` that `docker compose config` resolves for
it, with only the addresses translated to this machine (compose hostnames -> the
machine's Postgres / NATS / Redis with a unique database, stream and key prefix; the
fixed container ports -> free ports). A setting missing from the compose file is
therefore missing here too, and the stack fails the same way.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import NATS_URL, REDIS_URL, free_port, make_nats_names, pg_database, unique_name
from tests.support.processes import Proc, base_env, switchyard

from .tooling import ROOT

HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
TIERS = ("controlplane", "dataplane", "ingest")


@dataclass
class LocalStack:
    """The running tiers and what a test needs to talk to them."""

    services: dict[str, dict[str, Any]]  # compose service -> resolved model
    env: dict[str, dict[str, str]]  # compose service -> local process environment
    ports: dict[str, int]
    procs: dict[str, Proc] = field(default_factory=dict)
    log_dir: Path = Path()
    vm_url: str | None = None
    calls: int = 0  # successful chat calls made through the data plane

    def url(self, tier: str) -> str:
        return f"http://127.0.0.1:{self.ports[tier]}"

    def cli(self, *args: str, service: str = "controlplane") -> subprocess.CompletedProcess[str]:
        """`docker compose exec <service> switchyard ...`: the CLI with that container's env."""
        env = dict(self.env[service])
        env["SWITCHYARD_CONTROLPLANE_URL"] = self.url("controlplane")
        return subprocess.run(
            [str(Path(sys.executable).parent / "switchyard"), *args],
            env=base_env(env),
            cwd=self.log_dir,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def healthcheck(self, service: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK as compose runs it, with PID 1 = the service's command."""
        cmdline = self.log_dir / f"{service}.cmdline"
        argv = ["/opt/venv/bin/python", "/opt/venv/bin/switchyard", *self.services[service]["command"]]
        cmdline.write_bytes(b"".join(a.encode() + b"\0" for a in argv))
        test = self.services[service]["healthcheck"]["test"]
        assert test[0] == "CMD" and Path(test[1]).name == "switchyard-healthcheck", test
        return subprocess.run(
            [sys.executable, str(HEALTHCHECK), *test[2:], *extra, "--cmdline-file", str(cmdline)],
            env=base_env(self.env[service]),
            capture_output=True,
            text=True,
            timeout=30,
        )

    def wait_healthy(self, service: str, timeout: float = 60.0, *, live: bool = False) -> None:
        """Until the compose healthcheck passes (`live`: only the /healthz variant)."""
        deadline = time.monotonic() + timeout
        proc = self.procs[service]
        while True:
            if proc.popen is not None and proc.popen.poll() is not None:
                raise AssertionError(f"{service} exited {proc.popen.returncode}:\n{proc.log_tail()}")
            result = self.healthcheck(service, *(["--live"] if live else []))
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{service} never healthy: {result.stdout}{result.stderr}\n{proc.log_tail()}"
                )
            time.sleep(0.3)


def translate_env(service: str, env: dict[str, str], local: dict[str, str]) -> dict[str, str]:
    """The service's compose environment with compose addresses replaced by `local`."""
    out = dict(env)
    rewrites = {
        "SWITCHYARD_DATABASE_URL": ("@postgres:5432/", local["database_url"]),
        "SWITCHYARD_NATS_URL": ("nats://nats:4222", NATS_URL),
        "SWITCHYARD_REDIS_URL": ("redis://redis:6379", REDIS_URL),
        "SWITCHYARD_CONTROLPLANE_GRPC": ("controlplane:50051", f"127.0.0.1:{local['grpc_port']}"),
        "SWITCHYARD_TIMESERIES_URL": ("http://victoriametrics:8428", local.get("timeseries_url", "")),
    }
    for name, (compose_address, replacement) in rewrites.items():
        if name in out:
            assert compose_address in out[name], (service, name, out[name])
            out[name] = replacement
    for name in [n for n in out if n.endswith("_HOST") and n.startswith("SWITCHYARD_")]:
        assert out[name] == "0.0.0.0", (service, name)
        out[name] = "127.0.0.1"  # the test binds loopback only
    if "SWITCHYARD_REDIS_PREFIX" in out:
        out["SWITCHYARD_REDIS_PREFIX"] = local["redis_prefix"]
    # What the image and the container's fixed ports provide, made local and unique.
    out.update(
        SWITCHYARD_STATE_DIR=local[f"state_{service}"],
        SWITCHYARD_CONTROLPLANE_PORT=local["controlplane_port"],
        SWITCHYARD_GRPC_PORT=local["grpc_port"],
        SWITCHYARD_DATAPLANE_PORT=local["dataplane_port"],
        SWITCHYARD_INGEST_PORT=local["ingest_port"],
        SWITCHYARD_NATS_STREAM=local["stream"],
        SWITCHYARD_USAGE_SUBJECT_PREFIX=local["subject_prefix"],
        SWITCHYARD_NATS_DURABLE=local["durable"],
    )
    leftovers = [
        f"{k}={v}"
        for k, v in out.items()
        if any(h in v for h in ("@postgres", "nats://nats", "redis://redis"))
    ]
    assert not leftovers, f"{service}: compose addresses not translated: {leftovers}"
    return out


def victoria_metrics_binary() -> str | None:
    import shutil

    return shutil.which("victoria-metrics") or shutil.which("victoriametrics")


def _start_victoria_metrics(binary: str, port: int, ports: dict[str, int], tmp: Path) -> Proc:
    """VictoriaMetrics with the compose scrape config, retargeted at the local tiers."""
    scrape = yaml.safe_load((ROOT / "deploy" / "compose" / "victoriametrics" / "scrape.yml").read_text())
    scrape["global"]["scrape_interval"] = "1s"
    for job in scrape["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [f"127.0.0.1:{ports[t.split(':')[0]]}" for t in static["targets"]]
    config = tmp / "scrape.yml"
    config.write_text(yaml.safe_dump(scrape))
    args = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={tmp / 'vm-data'}",
        f"-promscrape.config={config}",
        # Make fresh points queryable at once (default: 30 s later).
        "-search.latencyOffset=0s",
    ]
    proc = Proc(name="victoriametrics", args=args, env=base_env({}), log_path=tmp / "victoriametrics.log")
    proc.health_url = f"http://127.0.0.1:{port}/health"
    return proc.start()


@contextlib.contextmanager
def local_stack(compose: dict[str, Any], tmp: Path) -> Iterator[LocalStack]:
    services = compose["services"]
    names = make_nats_names()
    ports = {t: free_port() for t in (*TIERS, "grpc", "victoriametrics")}
    with pg_database() as database_url:
        local = {
            "database_url": database_url,
            "redis_prefix": unique_name("sydeploy") + ":",
            **{f"{t}_port": str(ports[t]) for t in TIERS},
            "grpc_port": str(ports["grpc"]),
            **names,
            **{f"state_{s}": str(tmp / f"state-{s}") for s in ("migrate", *TIERS)},
        }
        stack = LocalStack(services=services, env={}, ports=ports, log_dir=tmp)
        binary = victoria_metrics_binary()
        if binary is not None:
            vm = _start_victoria_metrics(binary, ports["victoriametrics"], ports, tmp)
            stack.procs["victoriametrics"] = vm
            local["timeseries_url"] = f"http://127.0.0.1:{ports['victoriametrics']}"
            stack.vm_url = local["timeseries_url"]
        for service in ("migrate", *TIERS):
            stack.env[service] = translate_env(service, dict(services[service]["environment"]), local)
        try:
            if "victoriametrics" in stack.procs:
                stack.procs["victoriametrics"].wait_ready(timeout=30)
            # Start order of the compose file's depends_on conditions.
            migrate = switchyard("migrate", services["migrate"]["command"], stack.env["migrate"], tmp).start()
            stack.procs["migrate"] = migrate
            assert migrate.popen is not None
            assert migrate.popen.wait(timeout=120) == 0, migrate.log_tail()
            for service in TIERS:
                stack.procs[service] = switchyard(
                    service, services[service]["command"], stack.env[service], tmp
                )
            stack.procs["controlplane"].start()
            stack.wait_healthy("controlplane")
            stack.procs["ingest"].start()
            stack.procs["dataplane"].start()
            stack.wait_healthy("ingest")
            # Ready only once it holds a snapshot, i.e. after the first apply (the test
            # and the README do that next); until then it is alive.
            stack.wait_healthy("dataplane", live=True)
            yield stack
        finally:
            _stop_all(list(stack.procs.values()))
            _cleanup_nats(names)


def _stop_all(procs: list[Proc]) -> None:
    """SIGTERM every process first, then wait: the tiers drain in parallel."""
    import os
    import signal

    for proc in procs:
        if proc.popen is not None and proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
    for proc in procs:
        proc.stop()  # waits; escalates to SIGKILL after 10 s


def _cleanup_nats(names: dict[str, str]) -> None:
    import asyncio

    import nats

    async def drop() -> None:
        client = await nats.connect(NATS_URL, connect_timeout=2)
        try:
            js = client.jetstream()
            for stream in (names["stream"], f"{names['stream']}_DEADLETTER"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(stream)
        finally:
            await client.close()

    with contextlib.suppress(Exception):
        asyncio.run(drop())


def chat(stack: LocalStack, key: str, model: str, timeout: float = 15.0) -> httpx.Response:
    """The README's curl, retried while the new snapshot reaches the data plane."""
    deadline = time.monotonic() + timeout
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    while True:
        response = httpx.post(
            f"{stack.url('dataplane')}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        if response.status_code not in (401, 404) or time.monotonic() > deadline:
            stack.calls += response.status_code == 200
            return response
        time.sleep(0.2)
