"""What every hot route shares: authenticate, bound the body, call the route's targets
in the routing strategy's order with failover (routing.py, attempt_loop.py), answer
errors in the caller's protocol, and record the call. Subclasses (chat.py,
side_routes.py) say what to send and how to relay the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from switchyard_common.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    SwitchyardError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from switchyard_common.logs import accept_request_id, bind_call, current_call, reset_call
from switchyard_common.tracing import TRACING
from switchyard_common.usage import Attempt

from .access_log import ACCESS, log_call
from .admission.governor import Governor
from .admission.scopes import KeyRefusal
from .asgi_io import ClientGone, Receive, Scope, Send, send_response, watch_disconnect
from .attempt_loop import AttemptLoop
from .audit_capture import AuditCapture
from .breakers import Breakers, LocalBreakerStore
from .call_tracing import CallTrace
from .failover import RoutePlan
from .http_errors import error_response
from .index import IndexHolder, ModelRoute, SnapshotIndex, Target
from .metering import CallUnits
from .metrics import Metrics
from .providers.base import ChatCall, UpstreamRequest, Wire
from .routing import Router
from .upstream import Upstream, UpstreamResponse, local_response
from .usage_events import CallRecord, UsageEmitter, billing_prices

__all__ = ["CLIENT_CLOSED", "CallHandler", "Incoming", "not_ready", "request_id_header", "retry_headers"]

log = logging.getLogger(__name__)

# Statuses whose Retry-After (and the OpenAI / Anthropic SDKs' millisecond variant)
# reach the caller. 529 is Anthropic's "overloaded".
_RETRY_STATUSES = frozenset({429, 503, 529})
_RETRY_HEADERS = ("retry-after", "retry-after-ms")
# Status recorded when the caller went away before the answer was complete (nginx's).
CLIENT_CLOSED = 499
# Headers of every relayed (streamed) answer: no caching, no proxy buffering.
_STREAM_HEADERS = ((b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))
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


def request_id_header() -> tuple[bytes, bytes]:
    """`x-request-id` of the call being served, for its response (every answer has one)."""
    ids = current_call()
    return (b"x-request-id", ids.request_id.encode() if ids is not None else b"")


def caller_trace_id(traceparent: bytes) -> str | None:
    """The trace id of a W3C `traceparent` (version-traceid-parentid-flags), or None when
    the header is malformed or carries the all-zero (invalid) id."""
    parts = traceparent.strip().split(b"-")
    if len(parts) < 4 or len(parts[1]) != 32:
        return None
    trace_id = parts[1].decode("latin-1").lower()
    if trace_id == "0" * 32 or any(c not in "0123456789abcdef" for c in trace_id):
        return None
    return trace_id


class Incoming:
    """The request headers a handler needs, read in one pass over the scope."""

    __slots__ = (
        "api_key",
        "authorization",
        "content_length",
        "content_type",
        "forward_headers",
        "request_id",
        "traceparent",
    )

    def __init__(self, scope: Scope, forward: bool) -> None:
        self.authorization: bytes | None = None
        self.api_key: bytes | None = None
        self.content_length: bytes | None = None
        self.content_type: bytes | None = None
        self.traceparent: bytes | None = None
        request_id: bytes | None = None
        forwarded: list[tuple[str, str]] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                self.authorization = value
            elif name == b"x-api-key":
                self.api_key = value
            elif name == b"content-length":
                self.content_length = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"traceparent":
                self.traceparent = value
            elif name == b"content-type":
                self.content_type = value
            elif forward and name in _ANTHROPIC_FORWARD:
                forwarded.append((name.decode("latin-1"), value.decode("latin-1")))
        self.forward_headers = tuple(forwarded)
        # The caller's request id if it is a sane token, else a new one.
        self.request_id = accept_request_id(request_id)


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
        breakers: Breakers | None = None,
        router: Router | None = None,
        governor: Governor | None = None,
    ) -> None:
        self._router = router or Router()
        # Routing and failover (attempt_loop.py); one per data plane, shared by handlers.
        self._attempts = AttemptLoop(
            breakers or Breakers(LocalBreakerStore(), metrics), self._router.latency, metrics, retry_headers
        )
        # Admission (limits, budgets, scopes): one per data plane, shared by handlers.
        self._governor = governor or Governor(metrics=metrics)
        self._attempts.governor = self._governor
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
        incoming = Incoming(scope, self._forward)
        # Off (the default), tracing costs this one attribute read per call.
        trace = CallTrace(scope, self.route) if TRACING.enabled else None
        # Log lines emitted during the call carry its ids (read only when one is emitted).
        ids = bind_call(incoming.request_id, trace.trace_id if trace is not None else None)
        try:
            await self._serve(scope, receive, send, started, ts, incoming, trace)
        finally:
            reset_call(ids)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        started: float,
        ts: float,
        incoming: Incoming,
        trace: CallTrace | None,
    ) -> None:
        index = self._holder.current
        if index is None:
            exc = not_ready()
            if trace is not None:
                trace.reject(exc)
            await self._send_error(send, exc)
            return
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
        if trace is None and incoming.traceparent is not None:
            # Tracing is off here, but the caller's trace id still links the call's usage
            # and audit records to the caller's own traces.
            record.caller_trace_id = caller_trace_id(incoming.traceparent)
        if key.org.audit is not None:
            record.audit = AuditCapture(key.org.audit, scope["headers"])
        try:
            if key.networks:
                self._governor.check_client(record)
            length = incoming.content_length
            # Refuse before reading: the body may be huge. read_body counts bytes as
            # well, for chunked bodies and lying Content-Length headers.
            if length is not None and length.isdigit() and int(length) > self._max_body:
                raise PayloadTooLarge(f"request body is larger than the limit of {self._max_body} bytes")
            await self._handle(index, record, incoming, receive, send)
        except SwitchyardError as exc:
            record.status = exc.status
            record.error_type = exc.error_type
            if isinstance(exc, KeyRefusal):  # the key's ip, scope or model-list rule
                record.refused_by = exc.rule
            await self._send_error(send, exc, record)
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
            self._metrics.call_done(self.route, started, record.ttfb)
            if ACCESS.isEnabledFor(logging.INFO):  # off unless SWITCHYARD_ACCESS_LOG
                log_call(self.route, record, started)
            if self.emits_usage:
                self._emitter.emit(record)
            if record.admission is not None:
                # Settles with the event's bill; Redis work goes to a background task.
                self._governor.finish(record)
            if trace is not None:
                trace.finish(record)

    async def _handle(
        self, index: SnapshotIndex, record: CallRecord, incoming: Incoming, receive: Receive, send: Send
    ) -> None:
        raise NotImplementedError

    async def _send_error(self, send: Send, exc: SwitchyardError, record: CallRecord | None = None) -> None:
        status, headers, body = error_response(exc, self.protocol)
        if record is not None:
            # An admitted call's x-ratelimit-* headers come with its answer, errors too.
            headers.extend(record.response_headers)
            if record.audit is not None:
                record.audit.response(body)
        self._metrics.request(self.route, status)
        headers.append(request_id_header())
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
        if record.audit is not None:
            record.audit.response(body)
        await send_response(send, status, [*headers, *record.response_headers, request_id_header()], body)

    async def _start_stream(self, record: CallRecord, send: Send, status: int, content_type: bytes) -> None:
        """The headers of an answer relayed chunk by chunk: from here on, errors can no
        longer be sent as such."""
        record.status = status
        self._metrics.request(self.route, status)
        record.responded = True
        headers = [(b"content-type", content_type), *_STREAM_HEADERS, *record.response_headers]
        headers.append(request_id_header())
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def _pump(
        self,
        record: CallRecord,
        response: UpstreamResponse,
        receive: Receive,
        send: Send,
        feed: Callable[[bytes], bytes],
        audit: bool = True,
    ) -> str:
        """Relay the upstream's chunks, each through `feed` (what to pass on now), until
        the stream ends ("ok"), the caller leaves ("client_closed") or the upstream
        fails ("timeout", "unreachable"); closes the upstream response either way."""
        # Bodies are captured only under a `full` audit policy.
        capture = record.audit if audit and record.audit is not None and record.audit.full else None
        gone = asyncio.Event()
        watcher = asyncio.create_task(watch_disconnect(receive, gone))
        try:
            async for chunk in response.chunks():
                out = feed(chunk)
                if out:
                    if record.ttfb is None:
                        record.ttfb = time.perf_counter()
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                    if capture is not None:
                        capture.response(out)
                if gone.is_set():
                    return "client_closed"
        except UpstreamTimeout:
            return "timeout"
        except UpstreamUnreachable:
            return "unreachable"
        finally:
            watcher.cancel()
            await response.aclose()
        return "ok"

    async def _end_stream(
        self,
        record: CallRecord,
        send: Send,
        target: Target,
        outcome: str,
        attempt_started: float,
        status: int,
        tail: bytes = b"",
    ) -> None:
        """Record the relayed attempt's outcome and end the answer with `tail`."""
        self._attempt(
            record, target, "ok" if outcome == "client_closed" else outcome, attempt_started, status
        )
        if outcome == "client_closed":
            record.status = CLIENT_CLOSED
            record.error_type = "client_closed"
            return
        if outcome in ("timeout", "unreachable"):
            # Headers are gone already: the caller sees the answer end early.
            record.error_type = "upstream_stream_interrupted"
        if record.audit is not None and tail:
            record.audit.response(tail)
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _read_body(
        self, record: CallRecord, target: Target, response: UpstreamResponse, attempt_started: float
    ) -> bytes:
        """The whole body of a success answer; failing to read it fails the attempt."""
        try:
            body = await response.read()
        except UpstreamTimeout:
            self._attempt(record, target, "timeout", attempt_started, response.status)
            raise
        except UpstreamUnreachable:
            self._attempt(record, target, "unreachable", attempt_started, response.status)
            raise
        self._attempt(record, target, "ok", attempt_started, response.status)
        return body

    def _attempt(
        self,
        record: CallRecord,
        target: Target,
        outcome: str,
        attempt_started: float,
        status: int | None = None,
    ) -> None:
        ms = (time.perf_counter() - attempt_started) * 1000.0
        record.attempts.append(Attempt(target.runtime.slug, target.upstream_model, outcome, ms, status))
        self._metrics.attempt(target.runtime.slug, outcome, status)
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

    async def _route_and_admit(
        self,
        index: SnapshotIndex,
        record: CallRecord,
        model: str,
        payload: Mapping[str, Any],
        estimate_input: Callable[[], int],
        media: CallUnits | None = None,
    ) -> ModelRoute:
        """The route of the call's model for its key (404, 403), checked against this
        handler's own rule (`_check_route`), priced, and admitted by the governor
        (limits, budgets, scopes: admission/governor.py)."""
        record.model = model
        route = index.route_for(record.key, model)
        self._check_route(route)
        record.capability = route.capability
        record.prices = index.prices_for(route.name, record.ts)
        await self._governor.admit(index, record, route, payload, estimate_input, media)
        return route

    def _check_route(self, route: ModelRoute) -> None:
        """What this route requires of a model besides the key's rules (none here)."""

    def _plan(self, index: SnapshotIndex, record: CallRecord, route: ModelRoute) -> RoutePlan:
        """The call's targets in the order its routing strategy gives, among those its
        organization may use (PermissionDenied when none)."""
        org = record.key.org
        return RoutePlan(self._router.plan(route, org, index.price_at), org)

    async def _call_targets(
        self,
        call: ChatCall,
        record: CallRecord,
        index: SnapshotIndex,
        route: ModelRoute,
        build: Callable[[Target], Awaitable[UpstreamRequest | None]],
        unsupported: Callable[[Target], SwitchyardError] | None = None,
    ) -> tuple[Target, UpstreamRequest, UpstreamResponse, float]:
        """The first of the route's targets (in its routing strategy's order) that
        answers with a success status (a stream: once its first chunk is in), with
        failover per the org's policy; raises the failure the caller gets (in its
        protocol) when none does. `build` returns None for a target that cannot serve
        the call at all (then `unsupported` says why). The call is then billed at the
        prices of the target that answered (usage_events.billing_prices)."""
        plan = self._plan(index, record, route)
        answer = await self._attempts.run(self, call, record, plan, build, unsupported)
        record.prices = billing_prices(index, route.name, answer[0], record.ts)
        return answer
