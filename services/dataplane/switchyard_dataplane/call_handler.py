"""What every hot route shares: authenticate, bound the body, call the route's targets
in priority order with failover, answer errors in the caller's protocol, and record the
call. Subclasses (chat.py, side_routes.py) say what to send and how to relay the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from switchyard_common.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    SwitchyardError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from switchyard_common.tracing import TRACING
from switchyard_common.usage import Attempt

from .asgi_io import ClientGone, Receive, Scope, Send, send_response
from .call_tracing import CallTrace
from .exchange import upstream_failure
from .http_errors import error_response
from .index import IndexHolder, SnapshotIndex, Target
from .metrics import Metrics
from .providers.base import ChatCall, UpstreamRequest, Wire
from .upstream import Upstream, UpstreamResponse, local_response
from .usage_events import CallRecord, UsageEmitter

__all__ = ["CLIENT_CLOSED", "CallHandler", "Incoming", "not_ready", "retry_headers"]

log = logging.getLogger(__name__)

_MAX_ERROR_BODY = 1024 * 1024
# Upstream statuses after which the next target is tried: the target (not the request)
# is the problem, or it is out of capacity.
_FAILOVER_STATUSES = frozenset({401, 403, 404, 408, 429})
# Statuses whose Retry-After (and the OpenAI / Anthropic SDKs' millisecond variant)
# reach the caller. 529 is Anthropic's "overloaded".
_RETRY_STATUSES = frozenset({429, 503, 529})
_RETRY_HEADERS = ("retry-after", "retry-after-ms")
# Status recorded when the caller went away before the answer was complete (nginx's).
CLIENT_CLOSED = 499
# Caller headers that Anthropic upstreams must see when the caller speaks Anthropic.
_ANTHROPIC_FORWARD = frozenset({b"anthropic-version", b"anthropic-beta"})


def retry_headers(response: UpstreamResponse) -> tuple[tuple[str, str], ...]:
    """The upstream's retry hints on a rate-limit or overload answer, passed to the
    caller as they are: the SDKs' retry loops wait as these say."""
    if response.status not in _RETRY_STATUSES:
        return ()
    found = ((name, response.header(name)) for name in _RETRY_HEADERS)
    return tuple((name, value) for name, value in found if value)


def not_ready() -> ServiceUnavailable:
    return ServiceUnavailable("the data plane has not loaded a snapshot yet", code="not_ready")


class Incoming:
    """The request headers a handler needs, read in one pass over the scope."""

    __slots__ = ("api_key", "authorization", "content_length", "forward_headers")

    def __init__(self, scope: Scope, forward: bool) -> None:
        self.authorization: bytes | None = None
        self.api_key: bytes | None = None
        self.content_length: bytes | None = None
        forwarded: list[tuple[str, str]] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                self.authorization = value
            elif name == b"x-api-key":
                self.api_key = value
            elif name == b"content-length":
                self.content_length = value
            elif forward and name in _ANTHROPIC_FORWARD:
                forwarded.append((name.decode("latin-1"), value.decode("latin-1")))
        self.forward_headers = tuple(forwarded)


class CallHandler:
    """A raw ASGI handler for one hot route and caller protocol."""

    # Metrics label of the route, per caller protocol.
    route_names: ClassVar[dict[str, str]] = {}
    # False for routes that are not billable calls (count_tokens).
    emits_usage: bool = True

    def __init__(
        self,
        *,
        holder: IndexHolder,
        upstream: Upstream,
        emitter: UsageEmitter,
        metrics: Metrics,
        max_body_bytes: int,
        protocol: str = Wire.OPENAI,
    ) -> None:
        self._holder = holder
        self._upstream = upstream
        self._emitter = emitter
        self._metrics = metrics
        self._max_body = max_body_bytes
        self.protocol = protocol
        self.route = self.route_names[protocol]
        self._forward = protocol == Wire.ANTHROPIC

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        ts = time.time()
        # Off (the default), tracing costs this one attribute read per call.
        trace = CallTrace(scope, self.route) if TRACING.enabled else None
        index = self._holder.current
        if index is None:
            exc = not_ready()
            if trace is not None:
                trace.reject(exc)
            await self._send_error(send, exc)
            return
        incoming = Incoming(scope, self._forward)
        try:
            key = index.authenticate(incoming.authorization, ts, incoming.api_key)
        except SwitchyardError as exc:
            self._metrics.unauthenticated.inc()
            if trace is not None:
                trace.reject(exc)
            await self._send_error(send, exc)
            return
        client = scope.get("client")
        record = CallRecord(key, started, ts, client[0] if client else None, trace)
        try:
            length = incoming.content_length
            # Refuse before reading: the body may be huge. read_body counts bytes as
            # well, for chunked bodies and lying Content-Length headers.
            if length is not None and length.isdigit() and int(length) > self._max_body:
                raise PayloadTooLarge(f"request body is larger than the limit of {self._max_body} bytes")
            await self._handle(index, record, incoming, receive, send)
        except SwitchyardError as exc:
            record.status = exc.status
            record.error_type = exc.error_type
            await self._send_error(send, exc)
        except ClientGone:
            record.status = CLIENT_CLOSED
            record.error_type = "client_closed"
        except Exception as exc:
            log.exception("%s call failed (model %r)", self.route, record.model)
            if trace is not None:
                trace.span.record_exception(exc)
            record.status = 500
            record.error_type = "internal_error"
            if not record.responded:
                await self._send_error(send, SwitchyardError("internal error in the gateway"))
        finally:
            self._metrics.latency.observe(time.perf_counter() - started)
            if self.emits_usage:
                self._emitter.emit(record)
            if trace is not None:
                trace.finish(record)

    async def _handle(
        self, index: SnapshotIndex, record: CallRecord, incoming: Incoming, receive: Receive, send: Send
    ) -> None:
        raise NotImplementedError

    async def _send_error(self, send: Send, exc: SwitchyardError) -> None:
        status, headers, body = error_response(exc, self.protocol)
        self._metrics.request(self.route, status)
        await send_response(send, status, headers, body)

    async def _send_json(
        self, record: CallRecord, send: Send, status: int, body: bytes, content_type: str
    ) -> None:
        await self._send_body(record, send, status, [(b"content-type", content_type.encode())], body)

    async def _send_body(
        self, record: CallRecord, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        record.status = status
        record.ttfb = time.perf_counter()
        self._metrics.request(self.route, status)
        record.responded = True
        await send_response(send, status, headers, body)

    async def _read_body(
        self, record: CallRecord, target: Target, response: UpstreamResponse, attempt_started: float
    ) -> bytes:
        """The whole body of a success answer; failing to read it fails the attempt."""
        try:
            body = await response.read()
        except UpstreamTimeout:
            self._attempt(record, target, "timeout", attempt_started)
            raise
        except UpstreamUnreachable:
            self._attempt(record, target, "unreachable", attempt_started)
            raise
        self._attempt(record, target, "ok", attempt_started)
        return body

    def _attempt(self, record: CallRecord, target: Target, outcome: str, attempt_started: float) -> None:
        ms = (time.perf_counter() - attempt_started) * 1000.0
        record.attempts.append(Attempt(target.runtime.slug, target.upstream_model, outcome, ms))
        self._metrics.attempt(target.runtime.slug, outcome)
        if record.trace is not None:
            record.trace.end_attempt(outcome)

    async def _send_upstream(
        self, record: CallRecord, target: Target, request: UpstreamRequest
    ) -> UpstreamResponse:
        runtime = target.runtime
        local = runtime.adapter.answers_locally
        headers = request.headers
        trace = record.trace
        if trace is not None:
            # The attempt's span is ended by _attempt (or by the call's end).
            headers = headers + trace.start_attempt(target, request.url, local)
        response: UpstreamResponse
        if local:
            response = local_response(runtime.adapter.respond_locally(request))
        else:
            response = await self._upstream.send(
                request.url,
                headers,
                request.body,
                connect_timeout=runtime.connect_timeout_seconds,
                read_timeout=runtime.timeout_seconds,
            )
        if trace is not None:
            trace.attempt_status(response.status)
        return response

    async def _call_targets(
        self,
        call: ChatCall,
        record: CallRecord,
        targets: tuple[Target, ...],
        build: Callable[[Target], Awaitable[UpstreamRequest | None]],
        unsupported: Callable[[Target], SwitchyardError] | None = None,
    ) -> tuple[Target, UpstreamRequest, UpstreamResponse, float]:
        """The first target that answers with a success status, in order; raises the
        last failure (in the caller's protocol) when none does. `build` returns None for
        a target that cannot serve the call at all (then `unsupported` says why)."""
        failure: SwitchyardError | None = None
        for position, target in enumerate(targets):
            last = position == len(targets) - 1
            runtime = target.runtime
            record.provider = runtime.slug
            record.upstream_model = target.upstream_model
            request = await build(target)
            if request is None:
                if failure is None and unsupported is not None:
                    failure = unsupported(target)
                continue
            attempt_started = time.perf_counter()
            try:
                response = await self._send_upstream(record, target, request)
            except UpstreamTimeout as exc:
                failure = UpstreamTimeout(f"provider '{runtime.slug}': {exc.message}")
                self._attempt(record, target, "timeout", attempt_started)
                continue
            except UpstreamUnreachable as exc:
                failure = UpstreamUnreachable(f"provider '{runtime.slug}': {exc.message}")
                self._attempt(record, target, "unreachable", attempt_started)
                continue
            if response.status < 400:
                return target, request, response, attempt_started
            body = await response.read(_MAX_ERROR_BODY)
            failure = upstream_failure(call, runtime, response.status, body, retry_headers(response))
            self._attempt(record, target, "error", attempt_started)
            if last or not (response.status >= 500 or response.status in _FAILOVER_STATUSES):
                raise failure
        if failure is None:  # targets is never empty (route_for checks it)
            failure = UpstreamError("no target could serve the call")
        raise failure
