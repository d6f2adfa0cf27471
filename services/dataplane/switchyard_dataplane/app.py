"""The data plane's ASGI application.

FastAPI serves the cold routes (models list, health, readiness, metrics, errors for
unknown paths). The hot routes (`POST /v1/chat/completions`, `/v1/embeddings`,
`/v1/messages`, `/v1/messages/count_tokens` and the media routes `/v1/images/*`,
`/v1/audio/*`, `/v1/ocr`, `/v1/vision/segmentations`, each also under `/openai/v1` and
`/anthropic/v1`) are dispatched to raw ASGI handlers in front of it: FastAPI's routing,
request objects and streaming response add more CPU per call than the whole proxying
work (docs/adr/006-data-plane-hot-path.md). Errors keep the caller's protocol.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from switchyard_common.bus import EventPublisher
from switchyard_common.errors import InvalidRequest, NotFound, SwitchyardError
from switchyard_common.logs import accept_request_id, bind_call, reset_call
from switchyard_common.tracing import fastapi_options

from .admission.governor import Governor
from .asgi_io import Receive, Scope, Send
from .breakers import Breakers, LocalBreakerStore, open_count
from .call_handler import CallHandler
from .chat import ChatHandler
from .deps import CallerKey, CurrentIndex, DataPlaneMetrics, Holder
from .http_errors import error_response
from .image_inline import AddressGuard, public_hosts_only
from .index import IndexHolder, ModelRoute, SnapshotIndex
from .media_routes import MediaHandler
from .metrics import Metrics
from .providers.base import MEDIA_OPERATIONS, Wire
from .routing import Router
from .side_routes import CountTokensHandler, EmbeddingsHandler
from .upstream import Upstream
from .usage_events import UsageEmitter

__all__ = ["PREFIXES", "DataPlaneApp", "caller_protocol", "create_app"]

# Every route answers under each prefix (SDKs configured with either base URL work).
PREFIXES = ("/v1", "/openai/v1", "/anthropic/v1")


class DataPlaneApp:
    """Sends the hot routes straight to their handlers and everything else to FastAPI."""

    def __init__(self, routes: dict[str, CallHandler], api: FastAPI) -> None:
        self.routes = routes
        self.api = api
        self.chat = routes["/v1/chat/completions"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.routes.get(scope["path"])
            if handler is not None:
                await handler(scope, receive, send)
                return
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        await _with_request_id(self.api, scope, receive, send)


async def _with_request_id(app: FastAPI, scope: Scope, receive: Receive, send: Send) -> None:
    """Cold routes: the same `x-request-id` handling as the hot handlers (honoured if
    the caller sent a sane one, else new; echoed; bound for log lines)."""
    incoming = next((value for name, value in scope["headers"] if name == b"x-request-id"), None)
    request_id = accept_request_id(incoming)
    header = (b"x-request-id", request_id.encode())

    async def send_with_id(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), header]
        await send(message)

    token = bind_call(request_id)
    try:
        await app(scope, receive, send_with_id)
    finally:
        reset_call(token)


def caller_protocol(request: Request, routes: dict[str, CallHandler]) -> str:
    """The protocol a cold-route caller speaks: the prefix says, else the hot route's
    own, else Anthropic clients' headers."""
    path = request.url.path
    if path.startswith("/anthropic/"):
        return Wire.ANTHROPIC
    if path.startswith("/openai/"):
        return Wire.OPENAI
    handler = routes.get(path)
    if handler is not None:
        return handler.protocol
    headers = request.headers
    if "anthropic-version" in headers or "x-api-key" in headers:
        return Wire.ANTHROPIC
    return Wire.OPENAI


def _error_json(exc: SwitchyardError, protocol: str) -> Response:
    status, headers, body = error_response(exc, protocol)
    return Response(
        body,
        status_code=status,
        headers={k.decode(): v.decode() for k, v in headers if k != b"content-type"},
        media_type="application/json",
    )


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _openai_model(route: ModelRoute, index: SnapshotIndex) -> dict[str, Any]:
    return {
        "id": route.name,
        "object": "model",
        "created": index.created_at_ms // 1000,
        "owned_by": "switchyard",
    }


def _anthropic_model(route: ModelRoute, index: SnapshotIndex) -> dict[str, Any]:
    return {
        "type": "model",
        "id": route.name,
        "display_name": route.name,
        "created_at": _rfc3339(index.created_at_ms),
    }


def _build_api(holder: IndexHolder, metrics: Metrics, routes: dict[str, CallHandler]) -> FastAPI:
    api = FastAPI(
        title="Switchyard data plane", docs_url=None, redoc_url=None, openapi_url=None, **fastapi_options()
    )
    api.state.holder = holder
    api.state.metrics = metrics

    @api.exception_handler(SwitchyardError)
    async def _switchyard_error(request: Request, exc: SwitchyardError) -> Response:
        return _error_json(exc, caller_protocol(request, routes))

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        protocol = caller_protocol(request, routes)
        if exc.status_code == 404:
            return _error_json(
                NotFound(f"no route for {request.method} {request.url.path}", code="unknown_url"), protocol
            )
        err = SwitchyardError(str(exc.detail))
        err.status = exc.status_code
        err.error_type = "invalid_request_error"
        return _error_json(err, protocol)

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error_json(InvalidRequest(str(exc.errors())), caller_protocol(request, routes))

    # Only reached for methods other than POST (the dispatcher takes POST): gives 405.
    for path, handler in sorted(routes.items()):
        api.router.routes.append(Route(path, endpoint=handler, methods=["POST"]))

    async def list_models(
        request: Request, index: CurrentIndex, key: CallerKey, metrics: DataPlaneMetrics
    ) -> JSONResponse:
        allowed = index.models_for(key)
        metrics.request("models", 200)
        if caller_protocol(request, routes) == Wire.ANTHROPIC:
            data = [_anthropic_model(route, index) for route in allowed]
            return JSONResponse(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        return JSONResponse({"object": "list", "data": [_openai_model(route, index) for route in allowed]})

    async def get_model(
        request: Request, model_id: str, index: CurrentIndex, key: CallerKey, metrics: DataPlaneMetrics
    ) -> JSONResponse:
        route = index.route_for(key, model_id)
        metrics.request("models", 200)
        if caller_protocol(request, routes) == Wire.ANTHROPIC:
            return JSONResponse(_anthropic_model(route, index))
        return JSONResponse(_openai_model(route, index))

    for prefix in PREFIXES:
        api.add_api_route(prefix + "/models", list_models, methods=["GET"])
        api.add_api_route(prefix + "/models/{model_id:path}", get_model, methods=["GET"])

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(request: Request, holder: Holder) -> JSONResponse:
        index = holder.current
        if index is None:
            return JSONResponse({"status": "not_ready", "reason": "no snapshot loaded"}, status_code=503)
        body: dict[str, Any] = {
            "status": "ready",
            "snapshot_version": index.version,
            "snapshot_id": index.snapshot_id,
        }
        # Redis down degrades limits (local or 503 per org policy) but every replica
        # shares it: readiness stays 200 so an outage does not empty the pool.
        governor: Governor | None = getattr(request.app.state, "governor", None)
        if governor is not None:
            body.update(await governor.readiness())
        return JSONResponse(body)

    @api.get("/metrics")
    async def prometheus_metrics(metrics: DataPlaneMetrics) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return api


def create_app(
    *,
    holder: IndexHolder,
    upstream: Upstream,
    publisher: EventPublisher,
    usage_subject_prefix: str = "usage",
    max_body_bytes: int = 32 * 1024 * 1024,
    metrics: Metrics | None = None,
    image_guard: AddressGuard = public_hosts_only,
    breakers: Breakers | None = None,
    router: Router | None = None,
    governor: Governor | None = None,
) -> DataPlaneApp:
    """The data plane app over an index holder; `upstream` reaches the providers
    (HttpxUpstream(AiohttpTransport()) in production, HttpxUpstream(httpx.MockTransport(...)) in tests)."""
    metrics = metrics or Metrics()
    # Snapshot age and the publisher's spool depth are read at each scrape.
    metrics.watch(holder, publisher)
    emitter = UsageEmitter(publisher, usage_subject_prefix, metrics)
    # One breaker view and one set of latency averages for every handler of the replica.
    breakers = breakers or Breakers(LocalBreakerStore(), metrics)
    metrics.open_breakers.set_function(lambda: open_count(breakers.store.view()))

    # One admission governor (limits, budgets) for every handler of the replica.
    governor = governor or Governor(metrics=metrics)

    common: dict[str, Any] = {
        "governor": governor,
        "breakers": breakers,
        "router": router or Router(),
        "holder": holder,
        "upstream": upstream,
        "emitter": emitter,
        "metrics": metrics,
        "max_body_bytes": max_body_bytes,
    }

    def handler(kind: type[CallHandler], protocol: str) -> CallHandler:
        return kind(**common, protocol=protocol)

    chat = {
        p: ChatHandler(**common, protocol=p, image_guard=image_guard) for p in (Wire.OPENAI, Wire.ANTHROPIC)
    }
    by_suffix: dict[str, CallHandler] = {
        "/chat/completions": chat[Wire.OPENAI],
        "/embeddings": handler(EmbeddingsHandler, Wire.OPENAI),
        "/messages": chat[Wire.ANTHROPIC],
        "/messages/count_tokens": handler(CountTokensHandler, Wire.ANTHROPIC),
    }
    for operation in MEDIA_OPERATIONS:
        by_suffix["/" + operation.value] = MediaHandler(**common, protocol=Wire.OPENAI, operation=operation)
    routes = {prefix + suffix: h for prefix in PREFIXES for suffix, h in by_suffix.items()}
    api = _build_api(holder, metrics, routes)
    api.state.governor = governor
    return DataPlaneApp(routes, api)
