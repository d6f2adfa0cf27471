"""Throwaway servers on spare ports, for tests that stop a dependency mid-test (the
machine's shared Postgres / NATS are never stopped) and for the ingest bench.

Each keeps its data directory across stop/start, so a restart is a real restart of the
same server, and removes it on `close()`. Every process runs in its own session and is
ended by its own pid only.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["ThrowawayNats", "ThrowawayPostgres", "ThrowawayVictoriaMetrics", "port_open"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")


class _Server:
    name = "server"

    def __init__(self, workdir: Path | None = None) -> None:
        self.port = _free_port()
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"sy-{self.name}-"))
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.popen: subprocess.Popen[bytes] | None = None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        return port_open(self.port)

    def _spawn(self, argv: list[str], **kwargs: Any) -> None:
        with (self.workdir / f"{self.name}.log").open("ab") as log:
            self.popen = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )

    def start(self, timeout: float = 20.0) -> _Server:
        self._spawn(self._argv())
        _wait(self._ready, timeout, f"{self.name} on port {self.port}", self.popen)
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM: clean; SIGKILL: as if its host died)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        if sig == signal.SIGKILL:
            # The whole session this object started (Postgres' backends too).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        else:
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> _Server:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.workdir / f"{self.name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


class ThrowawayNats(_Server):
    """`nats-server -js` with its JetStream store in the work dir (kept across restarts)."""

    name = "nats"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        return [
            binary,
            "-js",
            "-sd",
            str(self.workdir / "jetstream"),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]


class ThrowawayVictoriaMetrics(_Server):
    """VictoriaMetrics with its storage in the work dir. New points become queryable
    after ~1 s (latency offset lowered from 30 s; response cache off) — poll."""

    name = "victoria-metrics"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        return [
            binary,
            f"-storageDataPath={self.workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=1s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the `data.result` vector."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        body = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", data=body, timeout=10) as response:
            payload = json.loads(response.read())
        assert payload.get("status") == "success", payload
        return list(payload["data"]["result"])

    def scalar(self, promql: str, at: float | None = None) -> float:
        """The value of a query that yields one series (0.0 if it yields none)."""
        result = self.query(promql, at)
        if not result:
            return 0.0
        assert len(result) == 1, result
        return float(result[0]["value"][1])


class ThrowawayPostgres(_Server):
    """A private cluster (initdb) with trust auth on 127.0.0.1, run as the `postgres`
    user when the tests run as root (Postgres refuses to run as root)."""

    name = "postgres"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        bindir = Path("/usr/lib/postgresql")
        versions = sorted(bindir.glob("*/bin/initdb")) if bindir.exists() else []
        # Debian keeps the server binaries (postgres, initdb) out of PATH.
        initdb = str(versions[-1]) if versions else shutil.which("initdb")
        if initdb is None:
            raise RuntimeError("initdb not found (postgresql is not installed)")
        self.bin = Path(initdb).parent
        self.data = self.workdir / "data"
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._user = pwd.getpwnam("postgres")
            os.chmod(self.workdir, 0o755)
            os.chown(self.workdir, self._user.pw_uid, self._user.pw_gid)
        self._run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        )

    def _demote(self) -> Any:
        user = self._user
        if user is None:
            return None

        def _switch() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

        return _switch

    def _run(self, argv: list[str]) -> None:
        with (self.workdir / f"{self.name}.log").open("ab") as log:
            subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=True, preexec_fn=self._demote())

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _argv(self) -> list[str]:
        return [
            str(self.bin / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-k", str(self.workdir),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "max_connections=50",
        ]  # fmt: skip

    def _ready(self) -> bool:
        if not port_open(self.port):
            return False
        import psycopg

        try:
            with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def start(self, timeout: float = 30.0) -> ThrowawayPostgres:
        self._spawn(self._argv(), preexec_fn=self._demote())
        _wait(self._ready, timeout, f"postgres on port {self.port}", self.popen)
        return self

    def stop(self, sig: int = signal.SIGINT) -> None:
        """SIGINT = Postgres' "fast" shutdown (clients disconnected, clean checkpoint);
        SIGKILL = the host died (crash recovery at the next start)."""
        super().stop(sig)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
