"""Governance in embedded mode (`switchyard up`, no Redis): rate limits, budgets and
circuit breakers run in memory in the one process, refusals carry the same headers as in
split mode, the control plane reads breaker and budget state from the in-process data
plane, and a limit changed through the REST API applies within a second, no restart."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.contract.test_embedded_quickstart import switchyard_up
from tests.support.processes import SWITCHYARD, Proc, base_env

pytestmark = pytest.mark.timeout(180)

KEY = "gk_" + "e" * 40
ADMIN = re.compile(r"admin login\s+(\S+@\S+) / (\S+)")


def _config(dead_port: int) -> str:
    return f"""
organizations:
  - name: team
    policy: {{breaker: {{failures: 2, cooldown_seconds: 120}}}}
providers:
  - {{slug: dead, api_format: openai, base_url: "http://127.0.0.1:{dead_port}/v1", api_key: sk-none}}
models:
  - name: flaky
    targets:
      - {{provider: dead, model: gone, priority: 0}}
      - {{provider: mock, model: mock-chat, priority: 1}}
prices:
  - {{model: mock-chat, unit: input_token, per_million: 1000}}
  - {{model: mock-chat, unit: output_token, per_million: 1000}}
keys:
  - name: limited
    org: team
    value_env: EMBEDDED_GOV_KEY
    models: [mock-chat, flaky]
    limits: {{rpm: 3, budget: {{amount: 100, currency: USD, period: day}}}}
"""


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Proc, dict[str, int]]]:
    config = tmp_path / "governed.yaml"
    config.write_text(_config(free_port()))
    # switchyard_up passes the environment through base_env (which drops SWITCHYARD_*).
    monkeypatch.setenv("EMBEDDED_GOV_KEY", KEY)
    with switchyard_up(tmp_path, "--config", str(config)) as running:
        yield running


def _chat(dp: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{dp}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def test_limits_budgets_and_breakers_run_in_memory(
    embedded: tuple[Proc, dict[str, int]], tmp_path: Path
) -> None:
    proc, ports = embedded
    dp = f"http://127.0.0.1:{ports['dataplane']}"
    cp = f"http://127.0.0.1:{ports['controlplane']}/api/v1"
    found = ADMIN.search(proc.log_path.read_text())
    assert found, proc.log_path.read_text()
    token = httpx.post(
        f"{cp}/auth/login", json={"email": found.group(1), "password": found.group(2)}, timeout=10
    ).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}

    ready = httpx.get(f"{dp}/readyz", timeout=10).json()
    assert ready["redis"] == "embedded", ready

    # Two calls to `flaky` fail over from the dead target; the second opens its breaker.
    for _ in range(2):
        answered = _chat(dp, "flaky")
        assert answered.status_code == 200, answered.text
        assert answered.headers["x-ratelimit-limit-requests"] == "3"
    third = _chat(dp, "mock-chat")
    assert third.status_code == 200 and third.headers["x-ratelimit-remaining-requests"] == "0"
    refused = _chat(dp, "mock-chat")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"

    breakers = httpx.get(f"{cp}/breakers", headers=admin, params={"provider": "dead"}, timeout=10)
    assert breakers.status_code == 200, breakers.text
    body: dict[str, Any] = breakers.json()
    assert body["source"] == "local", body
    [state] = body["data"]
    assert (state["provider"], state["upstream_model"], state["state"]) == ("dead", "gone", "open"), state

    keys = httpx.get(f"{cp}/keys", headers=admin, timeout=10).json()["data"]
    key_id = next(k["id"] for k in keys if k["name"] == "limited")
    budget = httpx.get(f"{cp}/keys/{key_id}/budget", headers=admin, timeout=10).json()
    assert budget["source"] == "local", budget
    [usage] = budget["budgets"]
    assert usage["spent"] > 0 and usage["reserved"] == pytest.approx(0), usage
    shown = subprocess.run(
        [SWITCHYARD, "usage", "budget", "--key", "limited", "--org", "team", "--output", "json"],
        env=base_env({"SWITCHYARD_CONTROLPLANE_URL": cp.removesuffix("/api/v1")}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["key"]["budgets"][0]["spent"] == pytest.approx(usage["spent"])

    # A limit raised through the REST API applies within a second, without a restart.
    patched = httpx.patch(f"{cp}/keys/{key_id}", headers=admin, json={"limits": {"rpm": 100}}, timeout=10)
    assert patched.status_code == 200, patched.text
    started = time.monotonic()
    while _chat(dp, "mock-chat").status_code != 200:
        assert time.monotonic() - started < 1.0 + 1.0, "the raised limit did not apply"
        time.sleep(0.05)
    took = time.monotonic() - started
    assert took <= 1.0, f"the raised limit applied after {took:.2f} s"
