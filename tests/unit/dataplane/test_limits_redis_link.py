"""RedisLink: bounded operations, down state with backoff, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import pytest
from redis.exceptions import ResponseError
from switchyard_dataplane.redis_link import RedisDown, RedisLink

from tests.conftest import REDIS_URL, free_port
from tests.unit.dataplane.governed import redis_link, throwaway_redis

pytestmark = pytest.mark.timeout(30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers (a stalled Redis)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


async def test_operations_run_and_redis_errors_do_not_mark_the_link_down(services: None) -> None:
    async with redis_link() as link:
        assert await link.ping()
        key = link.key("plain")
        await link.run(lambda: link.client.set(key, "text"))
        with pytest.raises(ResponseError):
            await link.run(lambda: link.client.incr(key))  # a wrong-type answer, not an outage
        assert link.healthy
        assert await link.run(lambda: link.client.get(key)) == b"text"


async def test_unreachable_redis_is_skipped_for_a_backoff_then_probed_again() -> None:
    clock = Clock()
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", "x:", clock=clock, backoff_initial=1.0)
    calls = 0

    async def ping() -> object:
        nonlocal calls
        calls += 1
        return await link.client.ping()

    try:
        with pytest.raises(RedisDown):
            await link.run(ping)
        assert not link.healthy and link.skipping and calls == 1
        assert "onnect" in link.last_error
        # During the backoff nothing reaches the socket.
        with pytest.raises(RedisDown):
            await link.run(ping)
        assert calls == 1
        clock.now += 1.01
        with pytest.raises(RedisDown):
            await link.run(ping)
        assert calls == 2
        # The second consecutive failure doubles the backoff.
        clock.now += 1.5
        assert link.skipping
        clock.now += 0.6
        assert not link.skipping
    finally:
        await link.close()


@pytest.mark.timeout(10)
async def test_a_stalled_redis_costs_one_timeout_not_a_hang() -> None:
    with silent_server() as port:
        link = RedisLink(f"redis://127.0.0.1:{port}/0", "x:", timeout=0.2)
        try:
            # Without the link's deadline this would hang (the test's timeout catches it).
            assert not await link.ping()
            assert not link.healthy and "Timeout" in link.last_error
        finally:
            await link.close()


async def test_the_link_comes_back_up_when_redis_returns_and_tells_listeners(services: None) -> None:
    clock = Clock()
    with throwaway_redis() as server:
        link = RedisLink(server.url, "x:", clock=clock, backoff_initial=0.5)
        seen: list[bool] = []
        link.listeners.append(seen.append)
        try:
            assert await link.ping()
            server.stop()
            assert not await link.ping()
            assert seen == [False]
            server.start()
            # A loaded machine may need more than one 250 ms try to reconnect.
            for _ in range(40):
                clock.now += 1.0
                if await link.ping():
                    break
                await asyncio.sleep(0.1)
            assert link.healthy and seen == [False, True]
        finally:
            await link.close()


async def test_many_concurrent_operations_on_a_dead_redis_all_fail_fast() -> None:
    link = RedisLink(REDIS_URL.replace("6379", str(free_port())), "x:")
    try:
        results = await asyncio.gather(*(link.ping() for _ in range(200)))
        assert not any(results)
    finally:
        await link.close()
