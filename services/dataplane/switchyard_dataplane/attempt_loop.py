"""The attempt loop of one call: try the planned targets in order until one answers.

Per target: skip it when its breaker is open (or this caller loses the half-open probe
race) or it is over its own quota, spilling to the next one (`overflow: next_target`)
or failing the call (`overflow: fail`: 503 for a breaker, 429 for a quota); else send,
with timeouts capped by the call's deadline. A success status ends the loop (for a
stream, once its first chunk is in: until then nothing has reached the caller, so a
stream that fails before its first byte still fails over). A failure of a class the org's
retry policy names moves on, within the retry budget and the deadline; any other failure
goes back to the caller at once. Every attempt and skip lands in `record.attempts`;
breakers and the latency averages learn from each attempt.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from itertools import cycle, islice
from typing import Any, Protocol

from switchyard_common.errors import (
    RateLimited,
    ServiceUnavailable,
    SwitchyardError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)

from .breakers import Admission, Breakers
from .exchange import upstream_failure
from .failover import (
    CONNECT_ERROR,
    TIMEOUT,
    AttemptClock,
    RoutePlan,
    breaker_counts,
    peek_first_chunk,
    status_class,
)
from .index import OrgPolicyRecord, Target
from .latency import LatencyTracker
from .metrics import Metrics
from .providers.base import ChatCall, UpstreamRequest
from .upstream import UpstreamResponse
from .usage_events import CallRecord

__all__ = ["AttemptIO", "AttemptLoop", "Answer"]

_MAX_ERROR_BODY = 1024 * 1024
# A probe whose caller vanished frees the probe after this long at most.
_MAX_PROBE_LEASE = 120.0

Answer = tuple[Target, UpstreamRequest, UpstreamResponse, float]
Build = Callable[[Target], Awaitable[UpstreamRequest | None]]


class AttemptIO(Protocol):
    """What the loop needs from the handler (CallHandler implements it)."""

    async def _send_upstream(
        self, record: CallRecord, target: Target, request: UpstreamRequest
    ) -> UpstreamResponse: ...

    def _attempt(
        self,
        record: CallRecord,
        target: Target,
        outcome: str,
        attempt_started: float,
        status: int | None = None,
    ) -> None: ...


class AttemptLoop:
    def __init__(
        self,
        breakers: Breakers,
        latency: LatencyTracker,
        metrics: Metrics,
        retry_headers: Callable[[UpstreamResponse], tuple[tuple[str, str], ...]],
    ) -> None:
        self.breakers = breakers
        self.latency = latency
        self._metrics = metrics
        self._retry_headers = retry_headers
        # The admission governor (admission/governor.py), for targets with their own quota.
        self.governor: Any = None

    async def run(
        self,
        io: AttemptIO,
        call: ChatCall,
        record: CallRecord,
        plan: RoutePlan,
        build: Build,
        unsupported: Callable[[Target], SwitchyardError] | None = None,
    ) -> Answer:
        org = plan.org
        targets = plan.targets
        clock = AttemptClock(org.retry, len(targets))
        failure: SwitchyardError | None = None
        skipped: dict[str, tuple[str, str]] = {}  # breaker id -> (target, why it was left out)
        for target in islice(cycle(targets), clock.passes(len(targets)) * len(targets)):
            if clock.attempts_left <= 0:
                break
            if clock.remaining() <= 0:
                failure = UpstreamTimeout(
                    f"no target answered within the call's deadline of {clock.deadline_seconds:g} s",
                    code="deadline_exceeded",
                )
                break
            ref = target.breaker
            if ref.id in skipped:
                continue
            runtime = target.runtime
            record.provider = runtime.slug
            record.upstream_model = target.upstream_model
            refusal: str | None = None
            probe = False
            admission = self.breakers.admit(ref, org.breaker)
            if admission is not Admission.CLOSED or (self.governor is not None and target.limits.active):
                refusal, probe = await self._admit(target, org, record, clock, admission)
            if refusal is not None:
                skipped[ref.id] = (target.price_name, refusal)
                io._attempt(record, target, refusal, time.perf_counter())
                self._metrics.failover(runtime.slug, refusal)
                if org.overflow == "fail":
                    raise _refusal_error(refusal, record.model, target)
                continue
            resolved = False
            try:
                request = await build(target)
                if request is None:
                    skipped[ref.id] = (target.price_name, "unsupported")
                    if failure is None and unsupported is not None:
                        failure = unsupported(target)
                    continue
                clock.attempts_left -= 1
                started = time.perf_counter()
                status: int | None = None
                try:
                    response = await _answer(io, record, target, request, clock.remaining())
                except UpstreamTimeout as exc:
                    kind, outcome = TIMEOUT, "timeout"
                    failure = UpstreamTimeout(f"provider '{runtime.slug}': {exc.message}")
                except UpstreamUnreachable as exc:
                    kind, outcome = CONNECT_ERROR, "unreachable"
                    failure = UpstreamUnreachable(f"provider '{runtime.slug}': {exc.message}")
                else:
                    if response.status < 400:
                        self.latency.observe(ref.id, time.perf_counter() - started)
                        resolved = True
                        if probe or self.breakers.tracked(ref, org.breaker):
                            await self.breakers.succeeded(ref, org.breaker)
                        return target, request, response, started
                    status = response.status
                    failure = await self._failure(call, target, response)
                    kind = status_class(status)
                    outcome = "rate_limited" if status == 429 else "error"
                io._attempt(record, target, outcome, started, status)
                resolved = True
                if breaker_counts(kind):
                    self.latency.observe_failure(ref.id, time.perf_counter() - started)
                    await self.breakers.failed(ref, org.breaker)
                else:
                    await self.breakers.succeeded(ref, org.breaker)
                if not org.retry.retries(kind, status) or (status == 429 and org.overflow == "fail"):
                    raise failure
                self._metrics.failover(runtime.slug, kind or f"status_{status}")
            finally:
                if probe and not resolved:
                    await self.breakers.release_probe(ref)
        if failure is not None:
            raise failure
        reasons = {why for _, why in skipped.values()}
        if reasons == {"over_quota"}:
            raise RateLimited(
                f"every target of the model '{record.model}' is over its quota",
                retry_after=1.0,
                code="target_quota_exceeded",
            )
        if reasons:
            raise ServiceUnavailable(
                f"no target of the model '{record.model}' is available: "
                + ", ".join(f"{name} ({why.replace('_', ' ')})" for name, why in skipped.values()),
                code="breaker_open" if "breaker_open" in reasons else "no_available_target",
            )
        raise UpstreamError("no target could serve the call")

    async def _admit(
        self,
        target: Target,
        org: OrgPolicyRecord,
        record: CallRecord,
        clock: AttemptClock,
        admission: Admission,
    ) -> tuple[str | None, bool]:
        """(why the target is skipped or None, whether this call is its half-open probe),
        given the breaker's `admission` of it."""
        ref = target.breaker
        probe = False
        if admission is Admission.OPEN:
            return "breaker_open", False
        if admission is Admission.PROBE:
            # The probe is held until its outcome is known: at most the attempt's read
            # timeout (a stream's outcome is known at its first byte).
            lease = min(target.runtime.timeout_seconds, max(0.0, clock.remaining()), _MAX_PROBE_LEASE)
            if not await self.breakers.take_probe(ref, max(lease, org.breaker.cooldown_seconds, 1.0)):
                return "breaker_open", False
            probe = True
        governor = self.governor
        if governor is not None and target.limits.active:
            try:
                admitted = await governor.target_admit(target, record)
            except BaseException:
                if probe:
                    await self.breakers.release_probe(ref)
                raise
            if not admitted:
                if probe:
                    await self.breakers.release_probe(ref)
                return "over_quota", False
        return None, probe

    async def _failure(self, call: ChatCall, target: Target, response: UpstreamResponse) -> SwitchyardError:
        try:
            body = await response.read(_MAX_ERROR_BODY)
        except (UpstreamTimeout, UpstreamUnreachable):
            body = b""  # the status says enough
        return upstream_failure(call, target.runtime, response.status, body, self._retry_headers(response))


async def _answer(
    io: AttemptIO, record: CallRecord, target: Target, request: UpstreamRequest, left: float
) -> UpstreamResponse:
    """Send; for a stream, also wait for its first chunk (until then nothing is committed
    to the caller). Bounded by what is left of the call's deadline; the provider's own
    timeouts apply within it, and a stream once started is not cut by the deadline."""
    if math.isinf(left):
        return await _start(io, record, target, request)
    try:
        async with asyncio.timeout(left):
            return await _start(io, record, target, request)
    except TimeoutError:
        raise UpstreamTimeout("no answer before the call's deadline") from None


async def _start(
    io: AttemptIO, record: CallRecord, target: Target, request: UpstreamRequest
) -> UpstreamResponse:
    response = await io._send_upstream(record, target, request)
    if response.status < 400 and request.stream:
        return await peek_first_chunk(response)
    return response


def _refusal_error(refusal: str, model: str, target: Target) -> SwitchyardError:
    name = target.price_name
    if refusal == "over_quota":
        return RateLimited(
            f"the target {name} of the model '{model}' is over its quota",
            retry_after=1.0,
            code="target_quota_exceeded",
        )
    return ServiceUnavailable(f"the circuit breaker of {name} (model '{model}') is open", code="breaker_open")
