from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _require_services(services: None) -> None:
    """Every integration test needs the machine's Postgres, Redis and NATS."""
