"""One split stack (control plane, data plane, ingest, Postgres, NATS, the media mock
upstream) for every media contract test."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.support.media_stack import media_stack
from tests.support.sdk_stack import clear_received
from tests.support.stack import APP_KEY, SplitStack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[SplitStack]:
    with media_stack(tmp_path_factory.mktemp("sdk-media")) as running:
        yield running


@pytest.fixture(scope="package")
def client(stack: SplitStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.dp_url}/v1", api_key=APP_KEY, max_retries=0, timeout=20)


@pytest.fixture(autouse=True)
def fresh(stack: SplitStack) -> None:
    clear_received(stack)
