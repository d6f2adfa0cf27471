"""`POST /v1/chat/completions`: authenticate, route, call upstream targets in priority order
with failover, relay the answer (streams chunk by chunk) and record the call."""

from __future__ import annotations

import asyncio
import logging
import time

from switchyard_common.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    SwitchyardError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from switchyard_common.usage import Attempt

from .asgi_io import ClientGone, Receive, Scope, Send, read_body, send_response
from .chat_request import parse_chat_body
from .http_errors import error_response
from .index import IndexHolder, SnapshotIndex, Target
from .metrics import Metrics
from .providers.base import ProviderRuntime, UpstreamRequest
from .upstream import Upstream, UpstreamResponse, local_response
from .usage_events import CallRecord, UsageEmitter

__all__ = ["ChatHandler", "not_ready"]

log = logging.getLogger(__name__)

ROUTE = "chat_completions"
_MAX_ERROR_BODY = 1024 * 1024
# Upstream statuses after which the next target is tried: the target (not the request)
# is the problem, or it is out of capacity.
_FAILOVER_STATUSES = frozenset({401, 403, 404, 408, 429})
_STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
# Status recorded when the caller went away before the answer was complete (nginx's).
_CLIENT_CLOSED = 499


def not_ready() -> ServiceUnavailable:
    return ServiceUnavailable("the data plane has not loaded a snapshot yet", code="not_ready")


class ChatHandler:
    def __init__(
        self,
        *,
        holder: IndexHolder,
        upstream: Upstream,
        emitter: UsageEmitter,
        metrics: Metrics,
        max_body_bytes: int,
    ) -> None:
        self._holder = holder
        self._upstream = upstream
        self._emitter = emitter
        self._metrics = metrics
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        ts = time.time()
        index = self._holder.current
        if index is None:
            await self._send_error(send, not_ready())
            return
        authorization = None
        content_length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                content_length = value
        try:
            key = index.authenticate(authorization, ts)
        except SwitchyardError as exc:
            self._metrics.unauthenticated.inc()
            await self._send_error(send, exc)
            return
        client = scope.get("client")
        record = CallRecord(key, started, ts, client[0] if client else None)
        try:
            await self._handle(index, record, content_length, receive, send)
        except SwitchyardError as exc:
            record.status = exc.status
            record.error_type = exc.error_type
            await self._send_error(send, exc)
        except ClientGone:
            record.status = _CLIENT_CLOSED
            record.error_type = "client_closed"
        except Exception:
            log.exception("chat completion failed (model %r)", record.model)
            record.status = 500
            record.error_type = "internal_error"
            if not record.responded:
                await self._send_error(send, SwitchyardError("internal error in the gateway"))
        finally:
            self._metrics.latency.observe(time.perf_counter() - started)
            self._emitter.emit(record)

    async def _send_error(self, send: Send, exc: SwitchyardError) -> None:
        status, headers, body = error_response(exc)
        self._metrics.request(ROUTE, status)
        await send_response(send, status, headers, body)

    async def _handle(
        self,
        index: SnapshotIndex,
        record: CallRecord,
        content_length: bytes | None,
        receive: Receive,
        send: Send,
    ) -> None:
        # Refuse before reading: the body may be huge. read_body counts bytes as well,
        # for chunked bodies and lying Content-Length headers.
        if content_length is not None and content_length.isdigit() and int(content_length) > self._max_body:
            raise PayloadTooLarge(f"request body is larger than the limit of {self._max_body} bytes")
        call = parse_chat_body(await read_body(receive, self._max_body))
        record.model = call.model
        record.stream = call.stream
        route = index.route_for(record.key, call.model)
        record.capability = route.capability
        record.prices = index.prices_for(route.name)

        failure: UpstreamError | None = None
        targets = route.ordered_targets()
        for position, target in enumerate(targets):
            last = position == len(targets) - 1
            runtime = target.runtime
            record.provider = runtime.slug
            record.upstream_model = target.upstream_model
            request = runtime.adapter.build_request(runtime, call, target.upstream_model)
            attempt_started = time.perf_counter()
            try:
                response = await self._send_upstream(runtime, request)
                if response.status >= 400:
                    failure = await self._upstream_failure(runtime, response)
            except UpstreamTimeout as exc:
                failure = UpstreamTimeout(f"provider '{runtime.slug}': {exc.message}")
                self._attempt(record, target, "timeout", attempt_started)
                continue
            except UpstreamUnreachable as exc:
                failure = UpstreamUnreachable(f"provider '{runtime.slug}': {exc.message}")
                self._attempt(record, target, "unreachable", attempt_started)
                continue
            if response.status >= 400:
                self._attempt(record, target, "error", attempt_started)
                if last or not (response.status >= 500 or response.status in _FAILOVER_STATUSES):
                    assert failure is not None
                    raise failure
                continue
            if request.stream:
                await self._relay_stream(record, target, request, response, receive, send, attempt_started)
            else:
                await self._relay_body(record, target, response, send, attempt_started)
            return
        assert failure is not None  # targets is never empty (route_for checks it)
        raise failure

    def _attempt(self, record: CallRecord, target: Target, outcome: str, attempt_started: float) -> None:
        ms = (time.perf_counter() - attempt_started) * 1000.0
        record.attempts.append(Attempt(target.runtime.slug, target.upstream_model, outcome, ms))
        self._metrics.attempt(target.runtime.slug, outcome)

    async def _send_upstream(self, runtime: ProviderRuntime, request: UpstreamRequest) -> UpstreamResponse:
        if runtime.adapter.answers_locally:
            return local_response(runtime.adapter.respond_locally(request))
        return await self._upstream.send(
            request.url,
            request.headers,
            request.body,
            connect_timeout=runtime.connect_timeout_seconds,
            read_timeout=runtime.timeout_seconds,
        )

    async def _upstream_failure(self, runtime: ProviderRuntime, response: UpstreamResponse) -> UpstreamError:
        body = await response.read(_MAX_ERROR_BODY)
        return UpstreamStatusError(
            response.status,
            runtime.adapter.error_body(response.status, body),
            f"provider '{runtime.slug}' answered HTTP {response.status}",
        )

    async def _relay_body(
        self,
        record: CallRecord,
        target: Target,
        response: UpstreamResponse,
        send: Send,
        attempt_started: float,
    ) -> None:
        try:
            body = await response.read()
        except UpstreamTimeout:
            self._attempt(record, target, "timeout", attempt_started)
            raise
        except UpstreamUnreachable:
            self._attempt(record, target, "unreachable", attempt_started)
            raise
        self._attempt(record, target, "ok", attempt_started)
        record.usage = target.runtime.adapter.parse_response(body)
        record.status = response.status
        headers = [(b"content-type", (response.content_type or "application/json").encode())]
        if response.content_encoding:
            headers.append((b"content-encoding", response.content_encoding.encode()))
        record.ttfb = time.perf_counter()
        self._metrics.request(ROUTE, response.status)
        record.responded = True
        await send_response(send, response.status, headers, body)

    async def _relay_stream(
        self,
        record: CallRecord,
        target: Target,
        request: UpstreamRequest,
        response: UpstreamResponse,
        receive: Receive,
        send: Send,
        attempt_started: float,
    ) -> None:
        relay = target.runtime.adapter.stream_relay(strip_usage=request.strip_usage)
        content_type = (response.content_type or "text/event-stream").encode()
        record.status = response.status
        self._metrics.request(ROUTE, response.status)
        record.responded = True
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", content_type), *_STREAM_HEADERS],
            }
        )
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        outcome = "ok"
        try:
            async for chunk in response.chunks():
                out = relay.feed(chunk)
                if out:
                    if record.ttfb is None:
                        record.ttfb = time.perf_counter()
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if gone.is_set():
                    outcome = "client_closed"
                    break
        except UpstreamTimeout:
            outcome = "timeout"
        except UpstreamUnreachable:
            outcome = "unreachable"
        finally:
            watcher.cancel()
            await response.aclose()
        record.usage = relay.usage
        self._attempt(record, target, "ok" if outcome == "client_closed" else outcome, attempt_started)
        if outcome == "client_closed":
            record.status = _CLIENT_CLOSED
            record.error_type = "client_closed"
            return
        if outcome != "ok":
            # Headers are gone already: the caller sees the stream end early.
            record.error_type = "upstream_stream_interrupted"
        await send({"type": "http.response.body", "body": relay.finish(), "more_body": False})


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return
