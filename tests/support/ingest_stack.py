"""The usage path as real processes for the "nothing lost, nothing doubled" tests:
control plane, data plane and one or more ingest processes, a mock upstream, against a
database, a NATS server and a time-series store the test chooses (throwaway ones for
the dependency it stops), and the totals of the three usage stores to compare."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.conftest import REDIS_URL, free_port, make_nats_names
from tests.support.processes import SWITCHYARD, Proc, base_env, mock_upstream, switchyard
from tests.support.stack import ADMIN_EMAIL, ADMIN_PASSWORD, APP_KEY, NARROW_KEY, SECRET_KEY, config_yaml
from tests.support.throwaway import ThrowawayVictoriaMetrics

__all__ = ["IngestStack", "Totals", "ingest_stack"]

# (ledger SQL, rollup SQL, time-series metric) per compared total.
_TOTALS = {
    "requests": ("count(*)", "sum(requests)", "switchyard_usage_requests"),
    "errors": ("sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END)", "sum(errors)", "switchyard_usage_errors"),
    "input_tokens": ("sum(input_tokens)", "sum(input_tokens)", "switchyard_usage_input_tokens"),
    "output_tokens": ("sum(output_tokens)", "sum(output_tokens)", "switchyard_usage_output_tokens"),
    "cost_micro": ("round(sum(cost) * 1e6)", "round(sum(cost) * 1e6)", "switchyard_usage_cost"),
}


@dataclass(frozen=True)
class Totals:
    values: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.values[name]


@dataclass
class IngestStack:
    root: Path
    pg_url: str
    nats_url: str
    vm: ThrowawayVictoriaMetrics | None
    names: dict[str, str] = field(default_factory=make_nats_names)
    cp_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    dp_port: int = field(default_factory=free_port)
    mock_port: int = field(default_factory=free_port)
    redis_prefix: str = field(default_factory=lambda: f"sytest:{uuid.uuid4().hex[:10]}:")
    procs: list[Proc] = field(default_factory=list)
    dataplane: Proc | None = None
    ingests: list[Proc] = field(default_factory=list)

    # --- processes ---------------------------------------------------------------

    def controlplane_env(self) -> dict[str, str]:
        return {
            "SWITCHYARD_DATABASE_URL": self.pg_url,
            "SWITCHYARD_SECRET_KEY": SECRET_KEY,
            "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
            "SWITCHYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SWITCHYARD_CONTROLPLANE_PORT": str(self.cp_port),
            "SWITCHYARD_GRPC_PORT": str(self.grpc_port),
        }

    def start_controlplane(self) -> None:
        migrate = subprocess.run(
            [SWITCHYARD, "migrate"], env=base_env(self.controlplane_env()), capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stderr
        proc = switchyard("controlplane", ["serve", "controlplane"], self.controlplane_env(), self.root)
        proc.health_url = f"http://127.0.0.1:{self.cp_port}/readyz"
        self.procs.append(proc.start())
        proc.wait_ready()
        config = self.root / "switchyard.yaml"
        config.write_text(config_yaml(self.mock_port, free_port()))
        env = base_env(
            {
                "SWITCHYARD_CONTROLPLANE_URL": f"http://127.0.0.1:{self.cp_port}",
                "SWITCHYARD_ADMIN_EMAIL": ADMIN_EMAIL,
                "SWITCHYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "APP_KEY": APP_KEY,
                "NARROW_KEY": NARROW_KEY,
            }
        )
        applied = subprocess.run(
            [SWITCHYARD, "apply", "-f", str(config)], env=env, capture_output=True, text=True, timeout=60
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr

    def start_dataplane(self) -> Proc:
        env = {
            "SWITCHYARD_DATAPLANE_PORT": str(self.dp_port),
            "SWITCHYARD_CONTROLPLANE_GRPC": f"127.0.0.1:{self.grpc_port}",
            "SWITCHYARD_SECRET_KEY": SECRET_KEY,
            # Kept across restarts: the last snapshot and the usage spool live here.
            "SWITCHYARD_STATE_DIR": str(self.root / "dataplane-state"),
            "SWITCHYARD_NATS_URL": self.nats_url,
            "SWITCHYARD_NATS_STREAM": self.names["stream"],
            "SWITCHYARD_USAGE_SUBJECT_PREFIX": self.names["subject_prefix"],
            "SWITCHYARD_REDIS_URL": REDIS_URL,
            "SWITCHYARD_REDIS_PREFIX": self.redis_prefix,
        }
        proc = switchyard("dataplane", ["serve", "dataplane"], env, self.root)
        proc.health_url = f"http://127.0.0.1:{self.dp_port}/readyz"
        self.dataplane = proc.start()
        self.procs.append(proc)
        proc.wait_ready()
        return proc

    def start_ingest(self, **extra: str) -> Proc:
        port = free_port()
        env = {
            "SWITCHYARD_DATABASE_URL": self.pg_url,
            "SWITCHYARD_NATS_URL": self.nats_url,
            "SWITCHYARD_NATS_STREAM": self.names["stream"],
            "SWITCHYARD_USAGE_SUBJECT_PREFIX": self.names["subject_prefix"],
            "SWITCHYARD_NATS_DURABLE": self.names["durable"],
            "SWITCHYARD_NATS_ACK_WAIT": "3",
            "SWITCHYARD_INGEST_PORT": str(port),
            "SWITCHYARD_BATCH_SIZE": "50",
            "SWITCHYARD_BATCH_TIMEOUT": "0.1",
            "SWITCHYARD_TIMESERIES_URL": self.vm.url if self.vm is not None else "",
            "SWITCHYARD_TIMESERIES_TIMEOUT": "2",
            **extra,
        }
        proc = switchyard(f"ingest-{len(self.ingests)}", ["serve", "ingest"], env, self.root)
        proc.health_url = f"http://127.0.0.1:{port}/healthz"
        proc.extra["metrics_url"] = f"http://127.0.0.1:{port}/metrics"
        self.ingests.append(proc.start())
        self.procs.append(proc)
        proc.wait_ready()
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()

    # --- load --------------------------------------------------------------------

    async def calls(self, count: int, *, concurrency: int = 8, pause: float = 0.0) -> int:
        """`count` chat completions through the data plane; returns how many were
        answered 200 (each one is one usage event). Every call must be answered."""
        answered = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(count):
            queue.put_nowait(n)

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal answered
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                response = await client.post(
                    "/v1/chat/completions",
                    json={
                        "model": "gpt-test",
                        "messages": [{"role": "user", "content": f"call {n} " * (n % 5 + 1)}],
                    },
                )
                assert response.status_code == 200, response.text
                answered += 1
                if pause:
                    await asyncio.sleep(pause)

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.dp_port}",
            headers={"Authorization": f"Bearer {APP_KEY}"},
            timeout=30,
        ) as client:
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return answered

    # --- the three stores ----------------------------------------------------------

    def _sql(self, table: str, column: int) -> Totals:
        exprs = ", ".join(f"coalesce({spec[column]}, 0)" for spec in _TOTALS.values())
        with psycopg.connect(self.pg_url, connect_timeout=5) as conn:
            row = conn.execute(f"SELECT {exprs} FROM {table}").fetchone()
        assert row is not None
        return Totals({name: int(value) for name, value in zip(_TOTALS, row, strict=True)})

    def ledger(self) -> Totals:
        return self._sql("usage_events", 0)

    def rollups(self) -> Totals:
        return self._sql("usage_rollups_minute", 1)

    def timeseries(self) -> Totals:
        """Sums over every minute and series of the newest point of each minute (the
        ingest rewrites a minute's totals with later stamps, ADR 016), evaluated a minute
        ahead so that the current minute counts too."""
        assert self.vm is not None
        values = {}
        at = time.time() + 60
        for name, (_, _, metric) in _TOTALS.items():
            value = self.vm.scalar(f"sum(sum_over_time(last_over_time({metric}[1m])[3h:1m]))", at=at)
            values[name] = round(value * 1e6) if name == "cost_micro" else round(value)
        return Totals(values)

    def ledger_count(self) -> int:
        try:
            return self.ledger()["requests"]
        except psycopg.Error:
            return -1  # the database is down

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.25)

    async def assert_consistent(self, expected_calls: int, timeout: float = 60.0) -> None:
        """Ledger == calls; rollups == ledger; time-series store == ledger (polled: new
        points become queryable after a second or two)."""
        await self.wait_for(
            lambda: self.ledger_count() == expected_calls, timeout, f"{expected_calls} ledger rows"
        )
        ledger = self.ledger()
        assert ledger["requests"] == expected_calls
        assert self.rollups() == ledger
        if self.vm is None:
            return
        last: dict[str, Any] = {}

        def ts_matches() -> bool:
            last["ts"] = self.timeseries()
            return bool(last["ts"] == ledger)

        try:
            await self.wait_for(ts_matches, 30, "time-series totals equal to the ledger")
        except AssertionError:
            raise AssertionError(f"time series {last.get('ts')} != ledger {ledger}") from None
        await asyncio.sleep(2)  # and they stay equal (no late, stale write)
        assert self.timeseries() == ledger
        assert self.ledger() == ledger

    def ingest_metric(self, proc: Proc, name: str) -> float:
        text = httpx.get(proc.extra["metrics_url"], timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not exposed")


@contextlib.asynccontextmanager
async def ingest_stack(
    root: Path, *, pg_url: str, nats_url: str, vm: ThrowawayVictoriaMetrics | None
) -> AsyncIterator[IngestStack]:
    """Mock upstream and control plane started (config applied); the test starts the
    data plane and ingest processes it needs. Everything is killed on exit."""
    stack = IngestStack(root=root, pg_url=pg_url, nats_url=nats_url, vm=vm)
    try:
        mock = mock_upstream(stack.mock_port, root)
        stack.procs.append(mock.start())
        mock.wait_ready()
        stack.start_controlplane()
        yield stack
    finally:
        stack.close()
        await _delete_stream(nats_url, stack.names["stream"])


async def _delete_stream(url: str, name: str) -> None:
    import nats

    with contextlib.suppress(Exception):
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            for stream in (name, f"{name}_DEADLETTER"):
                with contextlib.suppress(Exception):
                    await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()
