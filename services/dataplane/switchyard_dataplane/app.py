"""The data plane's ASGI application.

FastAPI serves the cold routes (models list, health, readiness, metrics, errors for
unknown paths). `POST /v1/chat/completions` is dispatched to a raw ASGI handler in front
of it: FastAPI's routing, request objects and streaming response add more CPU per call
than the whole proxying work (docs/adr/006-data-plane-hot-path.md).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from switchyard_common.bus import EventPublisher
from switchyard_common.errors import InvalidRequest, NotFound, SwitchyardError

from .asgi_io import Receive, Scope, Send
from .chat import ChatHandler
from .deps import CallerKey, CurrentIndex, DataPlaneMetrics, Holder
from .http_errors import error_response
from .index import IndexHolder
from .metrics import Metrics
from .upstream import Upstream
from .usage_events import UsageEmitter

__all__ = ["DataPlaneApp", "create_app"]

CHAT_PATHS = frozenset({"/v1/chat/completions", "/openai/v1/chat/completions"})


class DataPlaneApp:
    """Sends the hot route straight to its handler and everything else to FastAPI."""

    def __init__(self, chat: ChatHandler, api: FastAPI) -> None:
        self.chat = chat
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in CHAT_PATHS:
            await self.chat(scope, receive, send)
            return
        await self.api(scope, receive, send)


def _error_json(exc: SwitchyardError) -> Response:
    status, headers, body = error_response(exc)
    return Response(
        body,
        status_code=status,
        headers={k.decode(): v.decode() for k, v in headers if k != b"content-type"},
        media_type="application/json",
    )


def _build_api(holder: IndexHolder, metrics: Metrics, chat: ChatHandler) -> FastAPI:
    api = FastAPI(title="Switchyard data plane", docs_url=None, redoc_url=None, openapi_url=None)
    api.state.holder = holder
    api.state.metrics = metrics

    @api.exception_handler(SwitchyardError)
    async def _switchyard_error(request: Request, exc: SwitchyardError) -> Response:
        return _error_json(exc)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error_json(
                NotFound(f"no route for {request.method} {request.url.path}", code="unknown_url")
            )
        err = SwitchyardError(str(exc.detail))
        err.status = exc.status_code
        err.error_type = "invalid_request_error"
        return _error_json(err)

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error_json(InvalidRequest(str(exc.errors())))

    # Only reached for methods other than POST (the dispatcher takes POST): gives 405.
    for path in sorted(CHAT_PATHS):
        api.router.routes.append(Route(path, endpoint=chat, methods=["POST"]))

    @api.get("/v1/models")
    @api.get("/openai/v1/models")
    async def list_models(index: CurrentIndex, key: CallerKey, metrics: DataPlaneMetrics) -> JSONResponse:
        created = index.created_at_ms // 1000
        data = [
            {"id": route.name, "object": "model", "created": created, "owned_by": "switchyard"}
            for route in index.models_for(key)
        ]
        metrics.request("models", 200)
        return JSONResponse({"object": "list", "data": data})

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
) -> DataPlaneApp:
    """The data plane app over an index holder; `upstream` reaches the providers
    (HttpxUpstream(AiohttpTransport()) in production, HttpxUpstream(httpx.MockTransport(...)) in tests)."""
    metrics = metrics or Metrics()
    chat = ChatHandler(
        holder=holder,
        upstream=upstream,
        emitter=UsageEmitter(publisher, usage_subject_prefix, metrics),
        metrics=metrics,
        max_body_bytes=max_body_bytes,
    )
    return DataPlaneApp(chat, _build_api(holder, metrics, chat))
