"""One Starlette app serving every mock upstream; the protocol is chosen by the path,
so any base URL / api_path prefix works (Azure deployment paths included):

  .../chat/completions                      OpenAI (Azure when under /openai/deployments/{d}/)
  .../embeddings                            OpenAI embeddings
  .../images/generations|edits|variations   OpenAI images (edits, variations: multipart)
  .../audio/transcriptions|translations     OpenAI speech to text (multipart)
  .../audio/speech                          OpenAI text to speech (binary audio, in chunks)
  .../ocr                                   Mistral OCR
  .../vision/segmentations                  segmentation (the gateway's format)
                                            (every media route: Azure too, under
                                            /openai/deployments/{d}/; see openai_media.py)
  .../messages, .../messages/count_tokens   Anthropic
  .../models/{model}:generateContent        Gemini (also :streamGenerateContent, :countTokens)
  GET /_requests, DELETE /_requests         what was received (path, query, headers, body;
                                            a multipart body as its fields and each file's
                                            name, content type, size and SHA-256)
  GET /_images/pixel.png                    a 1x1 PNG (an image URL the gateway can fetch)
  GET /_health                              liveness
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import anthropic_messages, gemini, openai_chat, openai_media
from .behaviour import MockInvalid, MockUnauthorized, error_status, slow_seconds
from .openai_media import PIXEL_PNG

RECEIVED: list[dict[str, Any]] = []

_AZURE = re.compile(r"/openai/deployments/([^/]+)/")
_GEMINI = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$")

ErrorBody = Callable[[int, str], dict[str, Any]]


def _append(request: Request, body: Any, raw: str) -> None:
    RECEIVED.append(
        {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": dict(request.headers),
            "body": body,
            "raw": raw,
        }
    )


async def _record(request: Request) -> Any:
    raw = await request.body()
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = None
    _append(request, body, raw.decode("utf-8", "replace"))
    if raw and body is None:
        raise MockInvalid("We could not parse the JSON body of your request.")
    return body


async def _record_media(request: Request, kind: str) -> openai_media.MediaRequest:
    """Read and record a media request (a form as its fields and file descriptions)."""
    media = await openai_media.read(request, kind)
    _append(request, media.recorded(), media.raw)
    return media


def _sse(generator: Any) -> StreamingResponse:
    return StreamingResponse(generator, media_type="text/event-stream", headers={"cache-control": "no-cache"})


async def _openai(request: Request, body: Any, azure_deployment: str | None) -> Response:
    query = dict(request.query_params)
    openai_chat.check_auth(dict(request.headers), azure=azure_deployment is not None, query=query)
    model = str((body or {}).get("model") or azure_deployment or "") if isinstance(body, dict) else ""
    if request.url.path.endswith("/embeddings"):
        return JSONResponse(openai_chat.embeddings(body, model))
    turn = openai_chat.parse_chat(body, model)
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _sse(openai_chat.stream(turn, include_usage))
    return JSONResponse(openai_chat.completion(turn))


async def _anthropic(request: Request, body: Any) -> Response:
    anthropic_messages.check_auth(dict(request.headers))
    if request.url.path.endswith("/count_tokens"):
        return JSONResponse(
            anthropic_messages.count_tokens(anthropic_messages.parse_messages(body, count_only=True))
        )
    turn = anthropic_messages.parse_messages(body)
    if body.get("stream"):
        return _sse(anthropic_messages.stream(turn))
    return JSONResponse(anthropic_messages.message(turn))


async def _gemini(request: Request, body: Any, model: str, method: str) -> Response:
    query = dict(request.query_params)
    gemini.check_auth(dict(request.headers), query)
    turn = gemini.parse_generate(body, model)
    if method == "countTokens":
        return JSONResponse(gemini.count_tokens(turn))
    if method == "streamGenerateContent":
        if query.get("alt") != "sse":
            raise MockInvalid("this mock streams only with alt=sse")
        return _sse(gemini.stream(turn))
    return JSONResponse(gemini.generate(turn))


def _model_hint(body: Any, path: str) -> str:
    gemini_match = _GEMINI.search(path)
    if gemini_match:
        return gemini_match.group(1)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        return str(body["model"])
    azure = _AZURE.search(path)
    return azure.group(1) if azure else ""


async def dispatch(request: Request) -> Response:
    path = request.url.path
    if path == "/_requests":
        if request.method == "DELETE":
            RECEIVED.clear()
            return Response(status_code=204)
        return JSONResponse(RECEIVED)
    if path == "/_health":
        return JSONResponse({"ok": True})
    if request.method == "GET" and path == "/_images/pixel.png":
        return Response(PIXEL_PNG, media_type="image/png")
    if request.method == "GET" and path.endswith("/models"):
        return JSONResponse({"object": "list", "data": [{"id": "mock-upstream", "object": "model"}]})

    gemini_match = _GEMINI.search(path)
    media_kind = openai_media.kind_of(path)
    error_body: ErrorBody
    if path.endswith("/chat/completions") or path.endswith("/embeddings") or media_kind:
        error_body = openai_chat.error_body
    elif path.endswith("/messages") or path.endswith("/messages/count_tokens"):
        error_body = anthropic_messages.error_body
    elif gemini_match:
        error_body = gemini.error_body
    else:
        return JSONResponse(openai_chat.error_body(404, f"no mock route for {path}"), status_code=404)

    try:
        media = await _record_media(request, media_kind) if media_kind else None
        body = media.recorded() if media else await _record(request)
        model = _model_hint(body, path)
        status = error_status(model)
        if status is not None:
            return JSONResponse(error_body(status, f"mock upstream error {status}"), status_code=status)
        if slow_seconds(model):
            await asyncio.sleep(slow_seconds(model))
        if gemini_match:
            return await _gemini(request, body, gemini_match.group(1), gemini_match.group(2))
        if error_body is anthropic_messages.error_body:
            return await _anthropic(request, body)
        azure = _AZURE.search(path)
        deployment = azure.group(1) if azure else None
        if media is not None:
            query = dict(request.query_params)
            openai_chat.check_auth(dict(request.headers), azure=deployment is not None, query=query)
            base_url = str(request.base_url)
            return await openai_media.respond(media, azure_deployment=deployment, base_url=base_url)
        return await _openai(request, body, deployment)
    except MockUnauthorized as exc:
        status = 403 if gemini_match else 401
        return JSONResponse(error_body(status, str(exc)), status_code=status)
    except (MockInvalid, ValueError, TypeError, AttributeError) as exc:
        # Anything the mock cannot read is the caller's fault, as with the real APIs.
        return JSONResponse(error_body(400, str(exc) or type(exc).__name__), status_code=400)


app = Starlette(routes=[Route("/{path:path}", dispatch, methods=["GET", "POST", "DELETE"])])
