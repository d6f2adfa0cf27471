"""Killing tiers: the data plane keeps serving without the control plane and boots
from its cached snapshot; usage survives an ingest crash exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.stack import APP_KEY, SplitStack, split_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, services: None) -> Iterator[SplitStack]:
    with split_stack(tmp_path) as running:
        yield running


def _ask(stack: SplitStack, text: str) -> str:
    client = openai.OpenAI(base_url=f"{stack.dp_url}/v1", api_key=APP_KEY, max_retries=0, timeout=20)
    completion = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": text}]
    )
    return completion.choices[0].message.content or ""


def test_dataplane_survives_controlplane_loss_and_boots_from_cache(stack: SplitStack) -> None:
    assert _ask(stack, "before") == "echo: before"
    stack.controlplane.kill()
    for i in range(5):
        assert _ask(stack, f"during {i}") == f"echo: during {i}"

    # A fresh data plane with the control plane still down boots from the cached snapshot.
    stack.dataplane.kill()
    stack.dataplane = stack.new_dataplane("dataplane-rebooted").start()
    stack.dataplane.wait_ready(timeout=30)
    assert _ask(stack, "after reboot") == "echo: after reboot"

    # And when the control plane returns, changes flow again.
    stack.controlplane = stack.new_controlplane("controlplane-restarted").start()
    stack.controlplane.wait_ready()
    stack.cli("keys", "revoke", "acme/app")
    deadline = time.monotonic() + 10
    while True:
        try:
            _ask(stack, "revoked?")
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "revocation did not reach the rebooted data plane"
        time.sleep(0.1)


def test_usage_exactly_once_across_ingest_crash(stack: SplitStack) -> None:
    total = 60
    errors: list[BaseException] = []

    def fire() -> None:
        try:
            for i in range(total):
                _ask(stack, f"call {i}")
                time.sleep(0.02)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = threading.Thread(target=fire)
    worker.start()
    deadline = time.monotonic() + 30
    while stack.usage_count() < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.ingest.kill()  # SIGKILL, mid-stream of events
    time.sleep(1.0)
    stack.ingest = stack.new_ingest("ingest-restarted").start()
    stack.ingest.wait_ready()
    worker.join(timeout=120)
    assert not errors, errors
    deadline = time.monotonic() + 30
    while stack.usage_count() < total and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    assert stack.usage_count() == total
