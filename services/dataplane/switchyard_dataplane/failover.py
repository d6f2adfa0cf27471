"""Failover rules of one call: which failures move on to the next target (the org's
retry policy), the retry budget and deadline, and holding a stream's first chunk back
until it is known that the upstream produced one.

Failure classes (`retry.retry_on`): `connect_error` (refused, reset, DNS), `timeout` (no
answer within the read timeout; also an upstream's 408), `429`, `5xx`, or an exact
status such as "404". The default is the four classes.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchyard_common.errors import UpstreamUnreachable
from switchyard_common.proto import controlplane_pb2 as pb

from .upstream import UpstreamResponse, read_chunks

if TYPE_CHECKING:
    from .index import OrgPolicyRecord, Target

__all__ = [
    "CONNECT_ERROR",
    "DEFAULT_RETRY",
    "RATE_LIMITED",
    "SERVER_ERROR",
    "TIMEOUT",
    "AttemptClock",
    "PeekedResponse",
    "RetryPolicy",
    "RoutePlan",
    "breaker_counts",
    "peek_first_chunk",
    "retry_policy",
    "status_class",
]

CONNECT_ERROR = "connect_error"
TIMEOUT = "timeout"
RATE_LIMITED = "429"
SERVER_ERROR = "5xx"
_CLASSES = frozenset({CONNECT_ERROR, TIMEOUT, RATE_LIMITED, SERVER_ERROR})


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    classes: frozenset[str] = _CLASSES
    statuses: frozenset[int] = frozenset()
    # Upstream attempts per call, the first included; 0 = one per target.
    max_attempts: int = 0
    # Overall deadline of the call's attempts; 0 = none.
    deadline_seconds: float = 0.0

    def retries(self, failure: str, status: int | None = None) -> bool:
        """Whether a failure of class `failure` (status_class / CONNECT_ERROR /
        TIMEOUT) with upstream `status` moves on to the next target."""
        if status is not None and status in self.statuses:
            return True
        return failure in self.classes


DEFAULT_RETRY = RetryPolicy()


def retry_policy(message: pb.RetryPolicy) -> RetryPolicy:
    classes = {c for c in message.retry_on if c in _CLASSES}
    statuses = {int(c) for c in message.retry_on if c.isdigit()}
    return RetryPolicy(
        classes=frozenset(classes) if message.retry_on else _CLASSES,
        statuses=frozenset(statuses),
        max_attempts=max(0, message.max_attempts),
        deadline_seconds=max(0.0, message.deadline_seconds),
    )


def status_class(status: int) -> str:
    """The failure class of an upstream error status ("" for one of no class)."""
    if status == 429:
        return RATE_LIMITED
    if status >= 500:
        return SERVER_ERROR
    if status == 408:
        return TIMEOUT
    return ""


def breaker_counts(failure: str) -> bool:
    """Failures that count towards opening a breaker: the target is down, slow or out
    of capacity. Any other answer (e.g. a 400) shows the target alive."""
    return failure in _CLASSES


@dataclass(slots=True, frozen=True)
class RoutePlan:
    """What a call tries: its targets in order and its organization's policy."""

    targets: tuple[Target, ...]
    org: OrgPolicyRecord


class AttemptClock:
    """The call's retry budget and deadline."""

    __slots__ = ("attempts_left", "deadline", "deadline_seconds")

    def __init__(self, policy: RetryPolicy, targets: int, now: float | None = None) -> None:
        self.attempts_left = policy.max_attempts or targets
        self.deadline_seconds = policy.deadline_seconds
        start = time.perf_counter() if now is None else now
        self.deadline = start + policy.deadline_seconds if policy.deadline_seconds > 0 else math.inf

    def passes(self, targets: int) -> int:
        """How many times the target list may be walked: a budget above the number of
        targets goes round again."""
        return max(1, math.ceil(self.attempts_left / max(1, targets)))

    def remaining(self) -> float:
        """Seconds left before the deadline (inf without one)."""
        return self.deadline - time.perf_counter()


class PeekedResponse:
    """An upstream stream whose first chunk was read before the answer was committed to
    the caller; `chunks()` yields it first, then the rest."""

    __slots__ = ("_first", "_rest", "_response", "content_encoding", "content_type", "status")

    def __init__(self, response: UpstreamResponse, first: bytes, rest: AsyncIterator[bytes]) -> None:
        self._response = response
        self._first = first
        self._rest = rest
        self.status = response.status
        self.content_type = response.content_type
        self.content_encoding = response.content_encoding

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._first
        async for chunk in self._rest:
            yield chunk

    async def read(self, limit: int | None = None) -> bytes:
        return await read_chunks(self, limit)

    async def aclose(self) -> None:
        await self._response.aclose()

    def header(self, name: str) -> str | None:
        return self._response.header(name)


async def peek_first_chunk(response: UpstreamResponse) -> PeekedResponse:
    """Wait for the stream's first non-empty chunk; raises UpstreamTimeout or
    UpstreamUnreachable (also for a stream that ends before any byte), after closing it
    (also when cancelled, e.g. by the call's deadline)."""
    rest = aiter(response.chunks())
    try:
        while True:
            try:
                first = await anext(rest)
            except StopAsyncIteration:
                raise UpstreamUnreachable("the upstream ended the stream before its first byte") from None
            if first:
                return PeekedResponse(response, first, rest)
    except BaseException:
        await response.aclose()
        raise
