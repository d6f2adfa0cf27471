"""The quickstart as a new user does it: `switchyard up`, paste the printed curl, see the
call in `switchyard usage` — all embedded (SQLite, in-process bus), no servers."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import free_port
from tests.support.processes import SWITCHYARD, Proc, base_env

KEY_IN_CURL = re.compile(r"Bearer (gk_[A-Za-z0-9_-]+)")


@contextlib.contextmanager
def switchyard_up(
    workdir: Path, *extra: str, log_name: str = "up.log"
) -> Iterator[tuple[Proc, dict[str, int]]]:
    """`switchyard up` in `workdir` on free ports, until its banner is printed."""
    ports = {name: free_port() for name in ("dataplane", "controlplane", "grpc", "ingest")}
    args = [SWITCHYARD, "up", *extra]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    proc = Proc(name="switchyard-up", args=args, env=base_env({}), log_path=workdir / log_name)
    proc.popen = subprocess.Popen(
        args, env=proc.env, cwd=workdir, stdout=proc.log_path.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        proc.wait_ready(f"http://127.0.0.1:{ports['dataplane']}/readyz", timeout=60)
        deadline = time.monotonic() + 20
        while "curl" not in proc.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield proc, ports
    finally:
        proc.stop()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[Proc, dict[str, int]]]:
    config = tmp_path / "extra.yaml"
    config.write_text(
        "organizations: [{name: team}]\nkeys:\n  - {name: ci, org: team, models: [mock-chat]}\n"
    )
    with switchyard_up(tmp_path, "--config", str(config)) as running:
        yield running


def test_quickstart_curl_answers_and_usage_shows_it(
    embedded: tuple[Proc, dict[str, int]], tmp_path: Path
) -> None:
    proc, ports = embedded
    banner = proc.log_path.read_text()
    assert f"http://127.0.0.1:{ports['dataplane']}" in banner
    assert re.search(r"admin login\s+\S+@\S+ / \S+", banner)
    assert "team/ci (shown once): gk_" in banner  # the key minted for the --config file
    curl = banner[banner.index("curl -s") :].split("\n\n")[0]
    result = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    answer = json.loads(result.stdout)
    assert answer["choices"][0]["message"]["content"] == "Hello, Switchyard!"
    assert answer["usage"]["total_tokens"] > 0

    key = KEY_IN_CURL.search(curl)
    assert key
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{ports['dataplane']}/v1", api_key=key.group(1), max_retries=0
    )
    stream = client.chat.completions.create(
        model="mock-chat", messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "stream please"

    env = base_env({"SWITCHYARD_CONTROLPLANE_URL": f"http://127.0.0.1:{ports['controlplane']}"})
    deadline = time.monotonic() + 15
    while True:
        usage = subprocess.run(
            [SWITCHYARD, "usage", "--output", "json"], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert usage.returncode == 0, usage.stderr
        rows = {row["model"]: row for row in json.loads(usage.stdout)["rows"]}
        if rows.get("mock-chat", {}).get("requests", 0) >= 2:
            break
        assert time.monotonic() < deadline, usage.stdout
        time.sleep(0.2)
    assert rows["mock-chat"]["requests"] == 2
    assert rows["mock-chat"]["input_tokens"] > 0


def test_restart_keeps_the_same_quickstart_key(tmp_path: Path) -> None:
    """State lives in ./.switchyard: a second `up` prints the key the first one printed."""
    keys = []
    for run in range(2):
        with switchyard_up(tmp_path, log_name=f"up{run}.log") as (proc, ports):
            key = KEY_IN_CURL.search(proc.log_path.read_text())
            assert key
            keys.append(key.group(1))
            response = httpx.post(
                f"http://127.0.0.1:{ports['dataplane']}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key.group(1)}"},
                json={"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert response.status_code == 200
    assert keys[0] == keys[1]
    assert (tmp_path / ".switchyard" / "switchyard.db").exists()
