"""The data plane's ASGI application.

FastAPI serves the cold routes (models list, health, readiness, metrics, errors for
unknown paths). The hot routes (`POST /v1/chat/completions`, `/v1/embeddings`,
`/v1/messages`, `/v1/messages/count_tokens`, each also under `/openai/v1` and
`/anthropic/v1`) are dispatched to raw ASGI handlers in front of it: FastAPI's routing,
request objects and streaming response add more CPU per call than the whole proxying
work (docs/adr/006-data-plane-hot-path.md). Errors keep the caller's protocol.
"""

from __future__ import annotations

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

from .asgi_io import Receive, Scope, Send
from .call_handler import CallHandler
from .chat import ChatHandler
from .deps import CallerKey, CurrentIndex, DataPlaneMetrics, Holder
from .http_errors import error_response
from .image_inline import AddressGuard, public_hosts_only
from .index import IndexHolder, ModelRoute, SnapshotIndex
from .metrics import Metrics
from .providers.base import Wire
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
        await self.api(scope, receive, send)


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
    api = FastAPI(title="Switchyard data plane", docs_url=None, redoc_url=None, openapi_url=None)
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
    async def readyz(holder: Holder) -> JSONResponse:
        index = holder.current
        if index is None:
            return JSONResponse({"status": "not_ready", "reason": "no snapshot loaded"}, status_code=503)
        return JSONResponse(
            {"status": "ready", "snapshot_version": index.version, "snapshot_id": index.snapshot_id}
        )

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
) -> DataPlaneApp:
    """The data plane app over an index holder; `upstream` reaches the providers
    (HttpxUpstream(AiohttpTransport()) in production, HttpxUpstream(httpx.MockTransport(...)) in tests)."""
    metrics = metrics or Metrics()
    emitter = UsageEmitter(publisher, usage_subject_prefix, metrics)

    common: dict[str, Any] = {
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
    by_suffix = {
        "/chat/completions": chat[Wire.OPENAI],
        "/embeddings": handler(EmbeddingsHandler, Wire.OPENAI),
        "/messages": chat[Wire.ANTHROPIC],
        "/messages/count_tokens": handler(CountTokensHandler, Wire.ANTHROPIC),
    }
    routes = {prefix + suffix: h for prefix in PREFIXES for suffix, h in by_suffix.items()}
    return DataPlaneApp(routes, _build_api(holder, metrics, routes))
