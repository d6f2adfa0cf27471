"""The data plane's one Redis connection, with a health state so Redis trouble never hangs a call.

Every Redis use on the data plane (rate limits, budgets, breakers) goes through `RedisLink.run`:
- each operation is bounded by a short deadline (`timeout`, default 250 ms) on top of the
  socket timeouts, and redis-py's own retries are off (a retry would double the wait);
- a connection-level failure (refused, reset, timeout) marks the link down and `run` then
  refuses at once with `RedisDown` for a backoff period (doubling per consecutive failure up to
  `backoff_max`), so a dead Redis costs callers nothing but the fallback policy;
- after the backoff the next operation is the probe: success marks the link up again.

Errors that are Redis answers (e.g. `NOSCRIPT`, a wrong type) are not connection trouble: they
propagate unchanged and do not touch the health state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

__all__ = ["RedisDown", "RedisLink"]

log = logging.getLogger("switchyard.dataplane.redis")

T = TypeVar("T")

# What counts as "Redis is unreachable" rather than "Redis answered with an error". An
# unparseable answer means something that is not Redis sits at the address.
_LINK_ERRORS = (RedisConnectionError, RedisTimeoutError, InvalidResponse, TimeoutError, OSError)


_HIREDIS_PACKER = HiredisRespSerializer()


class _HiredisPacking:
    """Connection mixin: commands packed by hiredis (C) instead of redis-py's Python packer.

    redis-py's asyncio connections pack every command in Python even when hiredis is
    installed (its sync client uses hiredis); for the limiter's ~25-argument EVALSHA that
    is ~15 us per call on the bench host against ~2.5 us (docs/benchmarks.md). Same bytes,
    same DataError on an unencodable argument (redis-py's own HiredisRespSerializer).
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        return cast(list[bytes], _HIREDIS_PACKER.pack(*args))


class RedisDown(Exception):
    """Redis is unreachable now (failed just now, or skipped during the backoff period)."""


class RedisLink:
    """A shared `redis.asyncio.Redis` client plus up/down state.

    `client` may be used directly for work that must not affect health (tests, tooling);
    request-path code uses `run` so failures are bounded and remembered.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "sy:",
        *,
        timeout: float = 0.25,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 512,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._clock = clock
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
            max_connections=max_connections,
        )
        if HIREDIS_AVAILABLE:
            pool = self.client.connection_pool
            # The pool picked the class for the URL (TCP, TLS, Unix socket); keep it.
            base = pool.connection_class
            pool.connection_class = cast(
                type[AbstractConnection], type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
            )
        self._healthy = True
        self._down_until = 0.0
        self._failures = 0
        self.last_error = ""
        # Called with the new state on every up/down transition (metrics gauge, logs).
        self.listeners: list[Callable[[bool], None]] = []

    @property
    def healthy(self) -> bool:
        """False from a connection failure until an operation succeeds again."""
        return self._healthy

    @property
    def skipping(self) -> bool:
        """True while in the backoff period: `run` refuses without touching Redis."""
        return not self._healthy and self._clock() < self._down_until

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def run(self, coro_fn: Callable[[], Awaitable[T]]) -> T:
        """Await `coro_fn()` (a zero-argument callable using `self.client`) within the deadline.

        Returns its result; raises `RedisDown` when Redis is unreachable or in backoff.
        """
        if not self._healthy and self._clock() < self._down_until:
            raise RedisDown(self.last_error or "redis is down")
        try:
            async with asyncio.timeout(self.timeout):
                result = await coro_fn()
        except _LINK_ERRORS as exc:
            self._mark_down(exc)
            raise RedisDown(self.last_error) from exc
        if not self._healthy:
            self._mark_up()
        return result

    async def ping(self) -> bool:
        """One bounded PING (also the probe that can bring the link back up)."""
        try:
            await self.run(self.client.ping)
        except RedisDown:
            return False
        return True

    def _mark_down(self, exc: BaseException) -> None:
        self._failures += 1
        delay = min(self._backoff_max, self._backoff_initial * (2 ** (self._failures - 1)))
        self._down_until = self._clock() + delay
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._healthy:
            self._healthy = False
            log.warning("redis unreachable (%s); skipping it for %.2fs", self.last_error, delay)
            self._notify(False)

    def _mark_up(self) -> None:
        self._healthy = True
        self._failures = 0
        self._down_until = 0.0
        self.last_error = ""
        log.info("redis reachable again")
        self._notify(True)

    def _notify(self, up: bool) -> None:
        for listener in self.listeners:
            try:
                listener(up)
            except Exception:  # a metrics hook must never break the call path
                log.exception("redis link listener failed")

    async def close(self) -> None:
        await self.client.aclose()
