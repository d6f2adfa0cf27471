"""Fixtures shared by every test tier.

Integration fixtures use the machine's Postgres, Redis and NATS (started by .ci/run),
each test with its own database, key prefix or stream, removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_URL = os.environ.get("SWITCHYARD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("SWITCHYARD_TEST_NATS", "nats://127.0.0.1:4222")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """Create a uniquely named Postgres database; drop it on exit."""
    import psycopg

    name = unique_name("sy_test")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty Postgres database; dropped after the test."""
    with pg_database() as url:
        yield url


def make_nats_names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "stream": f"SYTEST_{tag}",
        "subject_prefix": f"sytest.{tag}.usage",
        "durable": f"ingest_{tag}",
    }


@pytest.fixture
def nats_names() -> dict[str, str]:
    """Unique JetStream stream / subject prefix / durable names for one test."""
    return make_nats_names()


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def services() -> None:
    """Skip (or, under CI, fail) when Postgres, Redis or NATS is not running."""
    missing = [
        name for name, port in (("Postgres", 5432), ("Redis", 6379), ("NATS", 4222)) if not _reachable(port)
    ]
    if missing:
        message = f"not running on 127.0.0.1: {', '.join(missing)} (start them, or run `bash .ci/run`)"
        if os.environ.get("SWITCHYARD_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path}/switchyard.db"
