"""The processes and measurements behind `bench/ingest/run.py`: one Run = a fresh
database, stream and durable consumer, and the real ingest process reading them; CPU
time per process from /proc."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from nats.js.api import StorageType, StreamConfig

from bench.ingest.events import EventFactory
from tests.support.throwaway import ThrowawayVictoriaMetrics, _free_port

ROOT = Path(__file__).resolve().parents[2]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _nats_server_pid(url: str) -> int | None:
    """The local nats-server listening on the URL's port (from its command line)."""
    wanted = url.rsplit(":", 1)[-1].strip("/")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode() for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if not argv or not argv[0].endswith("nats-server"):
            continue
        port = argv[argv.index("-p") + 1] if "-p" in argv[:-1] else "4222"
        if port == wanted:
            return int(entry.name)
    return None


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def log(message: str) -> None:
    print(f"[bench-ingest {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Run:
    """One database + stream + durable, and the ingest process reading them."""

    def __init__(self, args: argparse.Namespace, label: str, vm: ThrowawayVictoriaMetrics | None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.args = args
        self.label = label
        self.db = f"sy_bench_{tag}"
        self.stream = f"SYBENCH_{tag}"
        self.prefix = f"sybench.{tag}.usage"
        self.durable = f"ingest_{tag}"
        self.vm = vm
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = _free_port()
        self.rss_max_kb = 0
        self.cpu_base = (0.0, 0.0, 0.0, 0.0, 0.0)
        self.log_path = Path(args.work) / f"ingest-{label}.log"

    @property
    def db_url(self) -> str:
        return self.args.pg_admin.rsplit("/", 1)[0] + "/" + self.db

    def setup_db(self) -> None:
        from switchyard_controlplane.migrate import upgrade_database

        with psycopg.connect(self.args.pg_admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db}"')
        upgrade_database(self.db_url)

    async def setup_stream(self, nc: Any) -> None:
        await nc.jetstream().add_stream(
            StreamConfig(
                name=self.stream,
                subjects=[f"{self.prefix}.>"],
                storage=StorageType.FILE,
                duplicate_window=120.0,
            )
        )

    def start_ingest(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
        env.update(
            {
                "SWITCHYARD_DATABASE_URL": self.db_url,
                "SWITCHYARD_NATS_URL": self.args.nats_url,
                "SWITCHYARD_NATS_STREAM": self.stream,
                "SWITCHYARD_USAGE_SUBJECT_PREFIX": self.prefix,
                "SWITCHYARD_NATS_DURABLE": self.durable,
                "SWITCHYARD_INGEST_PORT": str(self.port),
                "SWITCHYARD_BATCH_SIZE": str(self.args.batch_size),
                "SWITCHYARD_BATCH_TIMEOUT": str(self.args.batch_timeout),
                "SWITCHYARD_TIMESERIES_URL": self.vm.url if self.vm is not None else "",
                "SWITCHYARD_LOG_LEVEL": "WARNING",
            }
        )
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "switchyard_ingest"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"ingest exited: see {self.log_path}")
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"ingest not ready: see {self.log_path}")

    def sample_rss(self) -> None:
        if self.proc is None:
            return
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.rss_max_kb = max(self.rss_max_kb, int(line.split()[1]))
        except OSError:
            pass

    def cpu_seconds(self) -> tuple[float, float, float, float, float]:
        """CPU seconds so far of the ingest process, the Postgres backends serving the
        bench database and the time-series store: figures that the other load on a
        shared machine does not inflate (unlike wall-clock rates)."""
        ingest = _proc_cpu(self.proc.pid) if self.proc is not None else 0.0
        with psycopg.connect(self.args.pg_admin, autocommit=True) as conn:
            query = "SELECT pid FROM pg_stat_activity WHERE datname = %s"
            pids = [r[0] for r in conn.execute(query, (self.db,))]
        vm = _proc_cpu(self.vm.popen.pid) if self.vm is not None and self.vm.popen is not None else 0.0
        nats_pid = _nats_server_pid(self.args.nats_url)
        nats_cpu = _proc_cpu(nats_pid) if nats_pid is not None else 0.0
        return ingest, sum(_proc_cpu(pid) for pid in pids), vm, nats_cpu, time.process_time()

    def mark_cpu(self) -> None:
        """The baseline (start-up, imports, connecting) the per-event figures leave out."""
        self.cpu_base = self.cpu_seconds()

    def cpu_per_event(self, events: int) -> dict[str, float]:
        now = self.cpu_seconds()
        # nats-server may serve others too (a shared machine): an upper bound. "bench" is
        # this process: publishing and measuring.
        names = ("ingest", "postgres", "timeseries_store", "nats_server", "bench")
        return {
            f"{name}_cpu_us_per_event": round((now[i] - self.cpu_base[i]) / max(events, 1) * 1e6, 1)
            for i, name in enumerate(names)
        }

    def ledger(self) -> tuple[int, int]:
        """(ledger rows, rollup requests)."""
        with psycopg.connect(self.db_url) as conn:
            rows = conn.execute("SELECT count(*) FROM usage_events").fetchone()
            rolled = conn.execute("SELECT coalesce(sum(requests), 0) FROM usage_rollups_minute").fetchone()
        return int(rows[0] if rows else 0), int(rolled[0] if rolled else 0)

    async def teardown(self, nc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.args.keep:
            return
        try:
            await nc.jetstream().delete_stream(self.stream)
        except Exception as exc:
            log(f"deleting stream {self.stream}: {exc}")
        with psycopg.connect(self.args.pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


async def publish_all(nc: Any, run: Run, factory: EventFactory, count: int) -> None:
    """Core-NATS publishes into the stream's subjects (no per-message ack round trip),
    flushed every few thousand; the stream's message count is checked afterwards."""
    for start in range(0, count, 5000):
        for _ in range(min(5000, count - start)):
            subject, msg_id, payload = factory.next(time.time())
            await nc.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        await nc.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = await nc.jetstream().stream_info(run.stream)
        if info.state.messages >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"stream holds {info.state.messages} of {count} messages")


async def consumer_state(nc: Any, run: Run) -> tuple[int, int, int]:
    """(ack floor stream seq, num_pending, num_ack_pending)."""
    info = await nc.jetstream().consumer_info(run.stream, run.durable)
    floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
    return floor, int(info.num_pending or 0), int(info.num_ack_pending or 0)


async def wait_acked(nc: Any, run: Run, count: int, timeout: float = 30.0) -> None:
    """Every event acked (after its commit): the consumer's ack floor is the last one."""
    deadline = time.monotonic() + timeout
    while True:
        floor, pending, unacked = await consumer_state(nc, run)
        if floor >= count and pending == 0 and unacked == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{run.label}: ack floor {floor} of {count} after {timeout}s")
        await asyncio.sleep(0.2)


def ledger_lag(run: Run) -> tuple[float, float]:
    """(max, p99) seconds from an event's time (its publication) to the start of the
    transaction that stored it (`ingested_at`)."""
    with psycopg.connect(run.db_url) as conn:
        row = conn.execute(
            "SELECT max(extract(epoch FROM ingested_at - ts)),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM ingested_at - ts))"
            " FROM usage_events"
        ).fetchone()
    return (float(row[0] or 0.0), float(row[1] or 0.0)) if row else (0.0, 0.0)
