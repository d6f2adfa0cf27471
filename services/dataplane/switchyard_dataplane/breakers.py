"""Circuit breakers per (provider, breaker_epoch, upstream model).

State machine (the org's `breaker` policy gives the threshold and the cooldown):

    closed --(failure_threshold consecutive failures or 429s)--> open
    open   --(cooldown over; one caller acquires the probe)----> half_open
    half_open --(probe succeeds)--> closed       half_open --(probe fails)--> open

The hot path never waits for a store: `Breakers.admit` reads the store's immutable view
(a dict lookup). Only the failure path, a success after failures, and taking the
half-open probe write to the store. `LocalBreakerStore` keeps the state in memory: the
embedded mode's store and the split mode's fallback while Redis is unreachable
(`breaker_redis.RedisBreakerStore` mirrors these transitions in Lua).
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Protocol

from switchyard_common.breaker_state import BreakerState, breaker_id
from switchyard_common.proto import controlplane_pb2 as pb

from .metrics import Metrics

__all__ = [
    "BREAKERS_OFF",
    "Admission",
    "BreakerPolicy",
    "BreakerRef",
    "BreakerStore",
    "Breakers",
    "LocalBreakerStore",
    "Transition",
    "after_failure",
    "after_success",
    "breaker_epoch_of",
    "breaker_policy",
    "open_count",
    "take_probe",
]

_EMPTY: Mapping[str, BreakerState] = MappingProxyType({})


@dataclass(slots=True, frozen=True)
class BreakerPolicy:
    # Consecutive failures that open a breaker; 0 = breakers off for the organization.
    failure_threshold: int = 0
    cooldown_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return self.failure_threshold > 0


BREAKERS_OFF = BreakerPolicy()


@dataclass(slots=True, frozen=True)
class BreakerRef:
    """Which breaker a target answers to; built once per snapshot."""

    provider: str
    epoch: str
    upstream_model: str
    id: str

    @classmethod
    def of(cls, provider: str, epoch: str, upstream_model: str) -> BreakerRef:
        return cls(provider, epoch, upstream_model, breaker_id(provider, epoch, upstream_model))


@dataclass(slots=True, frozen=True)
class Transition:
    before: str
    after: str
    state: BreakerState | None  # None: the breaker is closed with no failures (forgotten)

    @property
    def changed(self) -> bool:
        return self.before != self.after


class Admission(enum.Enum):
    CLOSED = "closed"  # call the target
    OPEN = "open"  # skip it (attempt outcome breaker_open)
    PROBE = "probe"  # cooldown over: call it only if this caller takes the probe


# --- the transitions, pure (the Redis scripts implement the same) ------------------


def after_failure(
    state: BreakerState | None, ref: BreakerRef, policy: BreakerPolicy, now: float
) -> BreakerState:
    before = state.state if state is not None else "closed"
    failures = (state.failures if state is not None else 0) + 1
    if before == "half_open" or (before == "closed" and failures >= policy.failure_threshold):
        # Opening (or re-opening after a failed probe) starts a fresh cooldown.
        return BreakerState(
            ref.provider, ref.epoch, ref.upstream_model, "open", failures, now + policy.cooldown_seconds
        )
    if state is None:
        return BreakerState(ref.provider, ref.epoch, ref.upstream_model, "closed", failures, 0.0)
    # Closed below the threshold, or open already (a call that started before it opened).
    return replace(state, failures=failures)


def after_success(state: BreakerState | None, now: float) -> BreakerState | None:
    """None: closed and forgotten. An open breaker inside its cooldown ignores a
    straggler that started before it opened."""
    if state is None:
        return None
    if state.state == "open" and now < state.open_until:
        return state
    return None


def take_probe(state: BreakerState | None, now: float, lease: float) -> BreakerState | None:
    """The half-open state with this caller's probe lease, or None when the probe is not
    available (still cooling down, or another caller holds it)."""
    if state is None or state.state == "closed":
        return None
    if state.state == "open" and now < state.open_until:
        return None
    if now < state.probe_until:
        return None
    return replace(state, state="half_open", probe_until=now + lease)


# --- stores ------------------------------------------------------------------------


class BreakerStore(Protocol):
    def view(self) -> Mapping[str, BreakerState]:
        """Immutable {breaker_id: state}; breakers absent are closed without failures."""
        ...

    async def failure(self, ref: BreakerRef, policy: BreakerPolicy, now: float) -> Transition: ...

    async def success(self, ref: BreakerRef, now: float) -> Transition: ...

    async def acquire_probe(self, ref: BreakerRef, now: float, lease: float) -> bool: ...

    async def release_probe(self, ref: BreakerRef) -> None: ...

    def states(self) -> list[BreakerState]:
        """Every known breaker (for the control plane)."""
        ...


class LocalBreakerStore:
    """Breakers in this process's memory. Copy-on-write: each change builds a new view,
    so readers hold a consistent mapping without locks (changes are rare)."""

    def __init__(self) -> None:
        self._view: Mapping[str, BreakerState] = _EMPTY

    def view(self) -> Mapping[str, BreakerState]:
        return self._view

    def states(self) -> list[BreakerState]:
        return sorted(self._view.values(), key=lambda b: (b.provider, b.upstream_model, b.epoch))

    def seed(self, view: Mapping[str, BreakerState]) -> None:
        """Start over from `view` (the last state Redis showed)."""
        self._view = MappingProxyType(dict(view))

    def put(self, breaker: str, state: BreakerState | None) -> None:
        current = dict(self._view)
        if state is None:
            current.pop(breaker, None)
        else:
            current[breaker] = state
        self._view = MappingProxyType(current)

    async def failure(self, ref: BreakerRef, policy: BreakerPolicy, now: float) -> Transition:
        state = self._view.get(ref.id)
        new = after_failure(state, ref, policy, now)
        self.put(ref.id, new)
        return Transition(state.state if state is not None else "closed", new.state, new)

    async def success(self, ref: BreakerRef, now: float) -> Transition:
        state = self._view.get(ref.id)
        if state is None:
            return Transition("closed", "closed", None)
        new = after_success(state, now)
        if new is not state:
            self.put(ref.id, new)
        return Transition(state.state, new.state if new is not None else "closed", new)

    async def acquire_probe(self, ref: BreakerRef, now: float, lease: float) -> bool:
        new = take_probe(self._view.get(ref.id), now, lease)
        if new is None:
            return False
        self.put(ref.id, new)
        return True

    async def release_probe(self, ref: BreakerRef) -> None:
        state = self._view.get(ref.id)
        if state is not None and state.probe_until:
            self.put(ref.id, replace(state, probe_until=0.0))


# --- what the call path uses ---------------------------------------------------------


class Breakers:
    """The call path's view of the breakers: a synchronous admission check and the
    writes that follow an attempt."""

    def __init__(
        self,
        store: BreakerStore,
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], float] = time.time,
        probe_retry_seconds: float = 0.2,
    ) -> None:
        self.store = store
        self._metrics = metrics
        self._clock = clock
        # After losing the probe race, do not ask the store again until the next view
        # refresh would show the winner's lease anyway.
        self._probe_retry = probe_retry_seconds
        self._probe_busy: dict[str, float] = {}

    def admit(self, ref: BreakerRef, policy: BreakerPolicy) -> Admission:
        if not policy.enabled:
            return Admission.CLOSED
        state = self.store.view().get(ref.id)
        if state is None or state.state == "closed":
            return Admission.CLOSED
        now = self._clock()
        if state.state == "open" and now < state.open_until:
            return Admission.OPEN
        if now < state.probe_until or now < self._probe_busy.get(ref.id, 0.0):
            return Admission.OPEN
        return Admission.PROBE

    async def take_probe(self, ref: BreakerRef, lease: float) -> bool:
        now = self._clock()
        if await self.store.acquire_probe(ref, now, lease):
            self._probe_busy.pop(ref.id, None)
            self._count("half_open", ref)
            return True
        self._probe_busy[ref.id] = now + self._probe_retry
        return False

    async def release_probe(self, ref: BreakerRef) -> None:
        await self.store.release_probe(ref)

    async def failed(self, ref: BreakerRef, policy: BreakerPolicy) -> None:
        if not policy.enabled:
            return
        transition = await self.store.failure(ref, policy, self._clock())
        if transition.changed:
            self._count(transition.after, ref)

    def tracked(self, ref: BreakerRef, policy: BreakerPolicy) -> bool:
        """Whether a success has something to reset (failures, or not closed)."""
        if not policy.enabled:
            return False
        state = self.store.view().get(ref.id)
        return state is not None and (state.state != "closed" or state.failures > 0)

    async def succeeded(self, ref: BreakerRef, policy: BreakerPolicy) -> None:
        """Writes only when the view shows something to reset: the common success
        costs a dict lookup."""
        if not self.tracked(ref, policy):
            return
        transition = await self.store.success(ref, self._clock())
        if transition.changed:
            self._count(transition.after, ref)

    def _count(self, state: str, ref: BreakerRef) -> None:
        if self._metrics is not None:
            self._metrics.breaker_transition(ref.provider, state)


def open_count(view: Mapping[str, BreakerState]) -> int:
    return sum(1 for state in view.values() if state.state != "closed")


def breaker_policy(message: pb.BreakerPolicy) -> BreakerPolicy:
    if message.failure_threshold <= 0:
        return BREAKERS_OFF
    cooldown = message.cooldown_seconds if message.cooldown_seconds > 0 else 30.0
    return BreakerPolicy(failure_threshold=message.failure_threshold, cooldown_seconds=cooldown)


def breaker_epoch_of(provider: pb.Provider) -> str:
    """The provider's breaker epoch. The control plane sets `breaker_epoch`; a snapshot
    without one (an older control plane) gets one derived from what it stands for."""
    if provider.breaker_epoch:
        return provider.breaker_epoch
    basis = "\0".join(
        (
            provider.base_url,
            provider.api_path,
            provider.api_format,
            provider.api_key_encrypted,
            provider.api_key_env,
            provider.auth_header,
        )
    )
    return hashlib.sha256(basis.encode()).hexdigest()[:12]
