"""The image's healthcheck script (deploy/docker/healthcheck.py): it finds the tier a
container serves from PID 1's command line and probes that tier's port, against a real
HTTP server here. (The compose stack test runs it against the real tiers.)"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .tooling import ROOT

SCRIPT = ROOT / "deploy" / "docker" / "healthcheck.py"


class _Probes(BaseHTTPRequestHandler):
    # path -> status; shared by the test and the server thread
    answers: dict[str, int] = {}
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        status = self.answers.get(self.path, 404)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status": "x"}')

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Probes)
    _Probes.answers = {"/readyz": 200, "/healthz": 200}
    _Probes.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _cmdline(tmp_path: Path, *argv: str) -> Path:
    path = tmp_path / "cmdline"
    path.write_bytes(b"".join(a.encode() + b"\0" for a in argv))
    return path


def _probe(cmdline: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--cmdline-file", str(cmdline), "--timeout", "3", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("tier", ["controlplane", "dataplane", "ingest"])
def test_probes_readyz_on_the_port_of_the_tier_pid1_serves(
    server: ThreadingHTTPServer, tmp_path: Path, tier: str
) -> None:
    port = str(server.server_address[1])
    # What PID 1 is in the image: the venv's python running the console script.
    cmdline = _cmdline(tmp_path, "/opt/venv/bin/python", "/opt/venv/bin/switchyard", "serve", tier)
    env = {f"SWITCHYARD_{tier.upper()}_PORT": port, f"SWITCHYARD_{tier.upper()}_HOST": "0.0.0.0"}

    ok = _probe(cmdline, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert _Probes.seen == ["/readyz"]
    assert f"{tier} http://127.0.0.1:{port}/readyz: ok" in ok.stdout

    _Probes.answers["/readyz"] = 503
    not_ready = _probe(cmdline, env)
    assert not_ready.returncode == 1
    assert "FAIL 503" in not_ready.stdout

    # --live asks /healthz, which still answers.
    assert _probe(cmdline, env, "--live").returncode == 0
    assert _Probes.seen[-1] == "/healthz"


def test_fails_when_nothing_listens(tmp_path: Path) -> None:
    from tests.conftest import free_port

    cmdline = _cmdline(tmp_path, "/sbin/docker-init", "--", "switchyard", "serve", "ingest")
    result = _probe(cmdline, {"SWITCHYARD_INGEST_PORT": str(free_port())})
    assert result.returncode == 1
    assert "FAIL" in result.stdout


def test_tier_override_and_one_shot_containers(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    port = str(server.server_address[1])
    migrate = _cmdline(tmp_path, "/opt/venv/bin/python", "/opt/venv/bin/switchyard", "migrate")
    # Nothing to probe in a one-shot container: healthy, and no request was made.
    result = _probe(migrate, {})
    assert result.returncode == 0 and "nothing to probe" in result.stdout
    assert _Probes.seen == []
    # An explicit tier wins over the command line.
    env = {"SWITCHYARD_HEALTHCHECK_TIER": "dataplane", "SWITCHYARD_DATAPLANE_PORT": port}
    assert _probe(migrate, env).returncode == 0
    assert _Probes.seen == ["/readyz"]
    assert _probe(migrate, {"SWITCHYARD_HEALTHCHECK_TIER": "nonsense"}).returncode == 1
