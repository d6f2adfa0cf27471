"""Start the real Switchyard tiers (and the mock upstream) as separate processes.

Every process gets its own free ports, its own state folder and the test's unique
database / stream names, and is killed (process group) when the test ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SWITCHYARD = str(Path(sys.executable).parent / "switchyard")


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    health_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, url: str | None = None, timeout: float = 30.0) -> Proc:
        url = url or self.health_url
        assert url, "no readiness URL"
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            try:
                response = httpx.get(url, timeout=1.0)
                if response.status_code == 200:
                    return self
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready at {url} ({last}):\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def switchyard(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> Proc:
    return Proc(name=name, args=[SWITCHYARD, *args], env=base_env(env), log_path=log_dir / f"{name}.log")


def mock_upstream(port: int, log_dir: Path, module: str = "tests.support.mock_upstream") -> Proc:
    """The OpenAI-only mock by default; `tests.support.mock_upstreams` serves every protocol."""
    proc = Proc(
        name="mock-upstream",
        args=[sys.executable, "-m", module, "--port", str(port)],
        env=base_env({}),
        log_path=log_dir / "mock-upstream.log",
        health_url=f"http://127.0.0.1:{port}/v1/models",
    )
    return proc
