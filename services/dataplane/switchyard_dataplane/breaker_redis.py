"""Breaker state in Redis, so all data-plane replicas agree (docs/adr/008-breaker-state.md).

- Reads: a background task reads every breaker with one script call every `interval`
  (SMEMBERS of the breaker set + HMGET per member, no SCAN) into an immutable view; the
  hot path only reads that view. Scripts that change a breaker return its new state,
  which this replica merges into its view at once.
- Writes: Lua scripts for failure, success and the half-open probe (SET NX PX on the
  probe key, so one replica probes), each one round trip on the failure path.
- Redis unreachable (RedisLink down, or the view older than `stale_after`): the local
  in-memory store takes over, for reads and writes, until Redis answers again. What the
  local store learnt meanwhile is not copied back; Redis's state wins again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from redis.exceptions import RedisError
from switchyard_common.breaker_state import (
    READ_ALL_SCRIPT,
    BreakerState,
    breaker_key,
    breaker_set_key,
    parse_breaker_rows,
)

from .breakers import BreakerPolicy, BreakerRef, LocalBreakerStore, Transition
from .redis_link import RedisDown, RedisLink

__all__ = ["RedisBreakerStore"]

log = logging.getLogger(__name__)

# A write the store cannot make in Redis goes to the local store instead: Redis down,
# or Redis answering with an error (OOM, READONLY after a failover, ...). Either way the
# call that reports the attempt must not fail because of its breaker.
_NOT_WRITTEN = (RedisDown, RedisError)

# A breaker that stays closed with a few failures, or belongs to an old epoch, expires.
_TTL_SECONDS = 86_400

# KEYS: hash, set, probe. ARGV: now_ms, threshold, open_until_ms, provider, epoch, model, ttl.
# Returns {before, after, failures, open_until_ms, probe_until_ms}.
_FAILURE = """
local k = KEYS[1]
local before = redis.call('HGET', k, 's') or 'closed'
local f = redis.call('HINCRBY', k, 'f', 1)
local after = before
if before == 'half_open' or (before == 'closed' and f >= tonumber(ARGV[2])) then
  after = 'open'
  redis.call('HSET', k, 'u', ARGV[3], 'pu', '0')
  redis.call('DEL', KEYS[3])
end
redis.call('HSET', k, 's', after, 'p', ARGV[4], 'e', ARGV[5], 'm', ARGV[6])
redis.call('EXPIRE', k, ARGV[7])
redis.call('SADD', KEYS[2], k)
local row = redis.call('HMGET', k, 'u', 'pu')
return {before, after, f, row[1] or '0', row[2] or '0'}
"""

# KEYS: hash, set, probe. ARGV: now_ms. An open breaker inside its cooldown ignores a
# straggler's success; otherwise the breaker closes and is forgotten.
_SUCCESS = """
local k = KEYS[1]
local row = redis.call('HMGET', k, 's', 'u')
if not row[1] then return {'closed', 'closed'} end
if row[1] == 'open' and tonumber(ARGV[1]) < tonumber(row[2] or '0') then
  return {row[1], row[1]}
end
redis.call('DEL', k, KEYS[3])
redis.call('SREM', KEYS[2], k)
return {row[1], 'closed'}
"""

# KEYS: hash, probe. ARGV: now_ms, lease_ms, probe_until_ms.
# Returns {taken (0|1), state, failures, open_until_ms, probe_until_ms}.
_PROBE = """
local k = KEYS[1]
local row = redis.call('HMGET', k, 's', 'f', 'u', 'pu')
if not row[1] or row[1] == 'closed' then return {0} end
local now = tonumber(ARGV[1])
if row[1] == 'open' and now < tonumber(row[3] or '0') then return {0} end
if now < tonumber(row[4] or '0') then return {0} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return {0} end
redis.call('HSET', k, 's', 'half_open', 'pu', ARGV[3])
return {1, 'half_open', row[2] or '0', row[3] or '0', ARGV[3]}
"""

# KEYS: hash, probe.
_RELEASE = """
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'pu', '0') end
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _log_write_error(exc: Exception) -> None:
    if not isinstance(exc, RedisDown):  # RedisDown was logged by the link
        log.warning("breaker write failed in Redis, kept locally: %s", exc)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class RedisBreakerStore:
    """BreakerStore over a RedisLink with a LocalBreakerStore fallback."""

    def __init__(
        self,
        link: RedisLink,
        *,
        local: LocalBreakerStore | None = None,
        interval: float = 0.2,
        stale_after: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._link = link
        self._prefix = link.prefix
        self.local = local or LocalBreakerStore()
        self.interval = interval
        self._stale_after = stale_after if stale_after is not None else max(1.0, 5 * interval)
        self._monotonic = monotonic
        self._remote: Mapping[str, BreakerState] = MappingProxyType({})
        self._refreshed = float("-inf")
        self._seeded: Mapping[str, BreakerState] | None = None
        client = link.client
        self._failure = client.register_script(_FAILURE)
        self._success = client.register_script(_SUCCESS)
        self._probe = client.register_script(_PROBE)
        self._release = client.register_script(_RELEASE)
        self._read_all = client.register_script(READ_ALL_SCRIPT)

    # --- reads ----------------------------------------------------------------------

    @property
    def remote(self) -> bool:
        """True while the Redis view is in use (fresh and the link up)."""
        return self._link.healthy and self._monotonic() - self._refreshed <= self._stale_after

    def view(self) -> Mapping[str, BreakerState]:
        if self.remote:
            return self._remote
        return self._fallback().view()

    def _fallback(self) -> LocalBreakerStore:
        if self._seeded is not self._remote:
            # Falling back: the local store carries on from the last state Redis showed
            # (open breakers stay open) instead of starting from nothing.
            self._seeded = self._remote
            self.local.seed(self._remote)
        return self.local

    def states(self) -> list[BreakerState]:
        return sorted(self.view().values(), key=lambda b: (b.provider, b.upstream_model, b.epoch))

    async def refresh(self) -> bool:
        """One read of every breaker into the view; False when Redis is unreachable."""
        try:
            flat = await self._link.run(lambda: self._read_all(keys=[breaker_set_key(self._prefix)]))
        except RedisDown:
            return False
        self._remote = MappingProxyType(parse_breaker_rows(list(flat or []), self._prefix))
        self._refreshed = self._monotonic()
        return True

    async def run(self) -> None:
        """Refresh every `interval` until cancelled."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad answer must not stop the refresher
                log.exception("breaker refresh failed")
            await asyncio.sleep(self.interval)

    # --- writes ---------------------------------------------------------------------

    def _keys(self, ref: BreakerRef) -> tuple[str, str, str]:
        key = breaker_key(self._prefix, ref.provider, ref.epoch, ref.upstream_model)
        return key, breaker_set_key(self._prefix), key + ":probe"

    def _merge(self, ref: BreakerRef, state: BreakerState | None) -> None:
        current = dict(self._remote)
        if state is None:
            current.pop(ref.id, None)
        else:
            current[ref.id] = state
        self._remote = MappingProxyType(current)

    async def failure(self, ref: BreakerRef, policy: BreakerPolicy, now: float) -> Transition:
        until = _ms(now + policy.cooldown_seconds)
        args: list[str | int] = [
            _ms(now),
            policy.failure_threshold,
            until,
            ref.provider,
            ref.epoch,
            ref.upstream_model,
            _TTL_SECONDS,
        ]
        try:
            row = await self._link.run(lambda: self._failure(keys=list(self._keys(ref)), args=args))
        except _NOT_WRITTEN as exc:
            _log_write_error(exc)
            return await self._fallback().failure(ref, policy, now)
        before, after = _text(row[0]), _text(row[1])
        state = BreakerState(
            ref.provider,
            ref.epoch,
            ref.upstream_model,
            after,  # type: ignore[arg-type]
            int(row[2]),
            float(_text(row[3]) or 0) / 1000.0,
            float(_text(row[4]) or 0) / 1000.0,
        )
        self._merge(ref, state)
        return Transition(before, after, state)

    async def success(self, ref: BreakerRef, now: float) -> Transition:
        if not self.remote:
            return await self._fallback().success(ref, now)
        try:
            row = await self._link.run(lambda: self._success(keys=list(self._keys(ref)), args=[_ms(now)]))
        except _NOT_WRITTEN as exc:
            _log_write_error(exc)
            return await self._fallback().success(ref, now)
        before, after = _text(row[0]), _text(row[1])
        if after == "closed":
            self._merge(ref, None)
        return Transition(before, after, self._remote.get(ref.id))

    async def acquire_probe(self, ref: BreakerRef, now: float, lease: float) -> bool:
        if not self.remote:
            return await self._fallback().acquire_probe(ref, now, lease)
        key, _, probe = self._keys(ref)
        args = [_ms(now), max(1, _ms(lease)), _ms(now + lease)]
        try:
            row = await self._link.run(lambda: self._probe(keys=[key, probe], args=args))
        except _NOT_WRITTEN as exc:
            _log_write_error(exc)
            return await self._fallback().acquire_probe(ref, now, lease)
        if int(row[0]) != 1:
            return False
        self._merge(
            ref,
            BreakerState(
                ref.provider,
                ref.epoch,
                ref.upstream_model,
                "half_open",
                int(_text(row[2]) or 0),
                float(_text(row[3]) or 0) / 1000.0,
                float(_text(row[4]) or 0) / 1000.0,
            ),
        )
        return True

    async def release_probe(self, ref: BreakerRef) -> None:
        if not self.remote:
            await self._fallback().release_probe(ref)
            return
        key, _, probe = self._keys(ref)
        try:
            await self._link.run(lambda: self._release(keys=[key, probe]))
        except _NOT_WRITTEN as exc:
            _log_write_error(exc)
            await self._fallback().release_probe(ref)
