"""The one place admin-API errors become HTTP responses: `{"error": {"message", "type", "code"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from switchyard_common.errors import AuthenticationError, ConfigError, SwitchyardError

__all__ = ["error_body", "install_error_handlers"]

log = logging.getLogger(__name__)

_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    422: "invalid_request_error",
}


def error_body(message: str, error_type: str, code: str | None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": code, **extra}}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


async def _switchyard_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SwitchyardError)
    extra: dict[str, Any] = {}
    if isinstance(exc, ConfigError):
        extra["issues"] = [{"path": i.path, "message": i.message} for i in exc.issues]
    if exc.param:
        extra["param"] = exc.param
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
    body = error_body(exc.message, exc.error_type, exc.code, **extra)
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    issues = [
        {
            "path": _loc(tuple(e.get("loc", ()))),
            "message": "unknown field" if e["type"] == "extra_forbidden" else e["msg"],
        }
        for e in errors
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        body = error_body(
            "request body is not valid JSON", "invalid_request_error", "invalid_json", issues=issues
        )
        return JSONResponse(body, status_code=400)
    message = "; ".join(f"{i['path'] or '<body>'}: {i['message']}" for i in issues) or "invalid request"
    body = error_body(message, "invalid_request_error", "validation_error", issues=issues)
    return JSONResponse(body, status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_type = _TYPES_BY_STATUS.get(exc.status_code, "api_error")
    code = "not_found" if exc.status_code == 404 else None
    body = error_body(str(exc.detail), error_type, code)
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # Reached when a concurrent writer (possibly another replica) won a race the
    # repository's own checks could not see.
    log.info("integrity error mapped to 409: %s", exc)
    body = error_body("the change conflicts with the current state; retry", "conflict_error", "conflict")
    return JSONResponse(body, status_code=409)


async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in admin API", exc_info=exc)
    return JSONResponse(error_body("internal server error", "api_error", "internal_error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SwitchyardError, _switchyard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unexpected_error)
