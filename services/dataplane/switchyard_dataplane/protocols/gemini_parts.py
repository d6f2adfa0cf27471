"""Gemini `Part`s <-> IR parts, shared by requests, responses and streams.

Thought signatures: Gemini puts `thoughtSignature` on whichever part closes a reasoning
step -- a `thought: true` text part, but also the first `functionCall` part of a turn or
an ordinary text part. The IR only has `ThinkingPart.signature`, so:
- a signature on a thought part stays on that `ThinkingPart`;
- a signature on any other part becomes an empty `ThinkingPart(text="", signature=...)`
  placed right before the IR part made from it;
- when building Gemini parts, an empty signed `ThinkingPart` hands its signature to the
  next part (function call, text, image); with nothing after it, it is sent as an empty
  text part carrying the signature.
A Gemini -> IR -> Gemini trip therefore keeps every signature on the part it came on,
and callers of other protocols carry it back as an (empty) signed thinking block.

Function-call ids: Gemini may omit `functionCall.id`. The IR needs one, so the codec
synthesizes ids starting with `SYNTHETIC_ID_PREFIX`; these are never sent to Gemini,
which matches responses to calls by name and order when ids are absent.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from typing import Any

from switchyard_common.errors import InvalidRequest

from .ir import ImagePart, Part, TextPart, ThinkingPart, ToolCallPart, ToolResultPart

__all__ = [
    "SYNTHETIC_ID_PREFIX",
    "arguments_object",
    "is_synthetic_id",
    "parts_from_gemini",
    "parts_to_gemini",
    "tool_result_to_gemini",
]

SYNTHETIC_ID_PREFIX = "call_gm_"

# Part keys that only annotate the data key of the part.
_ANNOTATIONS = {"thought", "thoughtSignature", "thought_signature", "videoMetadata", "partMetadata"}
# Data keys we do not translate (server-side code execution); dropped from history.
_SKIPPED = {"executableCode", "executable_code", "codeExecutionResult", "code_execution_result"}


def is_synthetic_id(call_id: str) -> bool:
    return call_id.startswith(SYNTHETIC_ID_PREFIX)


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    # Gemini's REST layer accepts proto field names in camelCase and snake_case alike.
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _str_field(obj: dict[str, Any], camel: str, snake: str, where: str, *, required: bool) -> str | None:
    value = _field(obj, camel, snake)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidRequest(f"{where}.{camel} must be a non-empty string", param=where)
    return value


def parts_from_gemini(
    raw_parts: Any,
    where: str,
    *,
    new_id: Callable[[], str],
    pending_calls: list[tuple[str, str]] | None = None,
    lenient: bool = False,
) -> list[Part]:
    """Gemini parts -> IR parts. `pending_calls` collects (name, id) of function calls
    not yet answered, so an id-less `functionResponse` is matched to its call by name.
    `lenient` (upstream output) skips parts it cannot read instead of refusing them."""
    if not isinstance(raw_parts, list):
        raise InvalidRequest(f"{where}.parts must be a list", param=where)
    out: list[Part] = []
    for i, raw in enumerate(raw_parts):
        try:
            out.extend(_part_from_gemini(raw, f"{where}.parts[{i}]", new_id, pending_calls))
        except InvalidRequest:
            if not lenient:
                raise
    return out


def _part_from_gemini(
    raw: Any, at: str, new_id: Callable[[], str], pending_calls: list[tuple[str, str]] | None
) -> list[Part]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{at} must be an object", param=at)
    signature = _str_field(raw, "thoughtSignature", "thought_signature", at, required=False)
    thought = raw.get("thought")
    if thought is not None and not isinstance(thought, bool):
        raise InvalidRequest(f"{at}.thought must be a boolean", param=at)
    data_keys = [k for k in raw if k not in _ANNOTATIONS]
    if not data_keys and signature is not None:
        return [ThinkingPart(text="", signature=signature)]
    if len(data_keys) != 1:
        raise InvalidRequest(f"{at} must hold exactly one kind of data", param=at)
    key = data_keys[0]
    if key in _SKIPPED:
        return []
    if key == "text":
        text = raw["text"]
        if not isinstance(text, str):
            raise InvalidRequest(f"{at}.text must be a string", param=at)
        if thought:
            return [ThinkingPart(text=text, signature=signature)]
        out: list[Part] = []
        if signature is not None:
            out.append(ThinkingPart(text="", signature=signature))
        if text or signature is None:
            out.append(TextPart(text=text))
        return out
    part: Part
    if key in ("inlineData", "inline_data"):
        part = _inline_image(raw[key], f"{at}.inlineData")
    elif key in ("fileData", "file_data"):
        blob = raw[key]
        if not isinstance(blob, dict):
            raise InvalidRequest(f"{at}.fileData must be an object", param=at)
        uri = _str_field(blob, "fileUri", "file_uri", f"{at}.fileData", required=True)
        mime = _str_field(blob, "mimeType", "mime_type", f"{at}.fileData", required=False)
        part = ImagePart(url=uri, media_type=mime)
    elif key in ("functionCall", "function_call"):
        part = _function_call(raw[key], f"{at}.functionCall", new_id, pending_calls)
    elif key in ("functionResponse", "function_response"):
        part = _function_response(raw[key], f"{at}.functionResponse", pending_calls)
    else:
        raise InvalidRequest(f"{at}: unsupported part type {key!r}", param=at)
    if signature is not None:
        return [ThinkingPart(text="", signature=signature), part]
    return [part]


def _inline_image(blob: Any, at: str) -> ImagePart:
    if not isinstance(blob, dict):
        raise InvalidRequest(f"{at} must be an object", param=at)
    data = _str_field(blob, "data", "data", at, required=True)
    mime = _str_field(blob, "mimeType", "mime_type", at, required=True)
    return ImagePart(data=data, media_type=mime)


def _function_call(
    call: Any, at: str, new_id: Callable[[], str], pending: list[tuple[str, str]] | None
) -> ToolCallPart:
    if not isinstance(call, dict):
        raise InvalidRequest(f"{at} must be an object", param=at)
    name = _str_field(call, "name", "name", at, required=True)
    assert name is not None
    args = call.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise InvalidRequest(f"{at}.args must be an object", param=at)
    call_id = _str_field(call, "id", "id", at, required=False) or new_id()
    if pending is not None:
        pending.append((name, call_id))
    return ToolCallPart(id=call_id, name=name, arguments=json.dumps(args, ensure_ascii=False))


def _function_response(resp: Any, at: str, pending: list[tuple[str, str]] | None) -> ToolResultPart:
    if not isinstance(resp, dict):
        raise InvalidRequest(f"{at} must be an object", param=at)
    name = _str_field(resp, "name", "name", at, required=True)
    assert name is not None
    call_id = _str_field(resp, "id", "id", at, required=False)
    if pending is not None:
        match = next(
            (i for i, (n, cid) in enumerate(pending) if (cid == call_id if call_id else n == name)), None
        )
        if match is not None:
            call_id = pending.pop(match)[1]
    if not call_id:
        raise InvalidRequest(f"{at} answers no earlier functionCall named {name!r}", param=at)
    body = resp.get("response", {})
    if not isinstance(body, dict):
        raise InvalidRequest(f"{at}.response must be an object", param=at)
    content: list[TextPart | ImagePart] = []
    is_error = False
    if set(body) == {"output"}:
        out = body["output"]
        content.append(TextPart(out if isinstance(out, str) else json.dumps(out, ensure_ascii=False)))
    elif "error" in body and "output" not in body and len(body) == 1:
        is_error = True
        err = body["error"]
        content.append(TextPart(err if isinstance(err, str) else json.dumps(err, ensure_ascii=False)))
    elif body:
        content.append(TextPart(json.dumps(body, ensure_ascii=False)))
    extra_parts = resp.get("parts")
    if extra_parts is not None:
        if not isinstance(extra_parts, list):
            raise InvalidRequest(f"{at}.parts must be a list", param=at)
        for j, sub in enumerate(extra_parts):
            blob = _field(sub, "inlineData", "inline_data") if isinstance(sub, dict) else None
            if blob is None:
                raise InvalidRequest(f"{at}.parts[{j}] must carry inlineData", param=at)
            content.append(_inline_image(blob, f"{at}.parts[{j}].inlineData"))
    return ToolResultPart(tool_call_id=call_id, content=content, is_error=is_error, name=name)


# --- IR -> Gemini --------------------------------------------------------------------


def arguments_object(arguments: str, *, strict: bool) -> dict[str, Any]:
    """A tool call's JSON argument text as the object Gemini's `args` needs. `strict`
    (caller-supplied history) refuses what is not a JSON object; upstream output is
    relayed best effort instead."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    if strict:
        raise InvalidRequest("tool call arguments must be a JSON object", param="messages")
    return {}


def _image_to_gemini(part: ImagePart) -> dict[str, Any]:
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data}}
    url = part.url or ""
    if url.startswith("data:"):
        # data:<mime>;base64,<payload> -- OpenAI callers send inline images this way.
        header, _, payload = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64" or not payload:
            raise InvalidRequest("image data URLs must be base64-encoded", param="messages")
        return {"inlineData": {"mimeType": mime or part.media_type or "image/png", "data": payload}}
    if not url:
        raise InvalidRequest("image has neither url nor data", param="messages")
    mime = part.media_type or mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def tool_result_to_gemini(part: ToolResultPart, name: str) -> list[dict[str, Any]]:
    """A tool result as a `functionResponse` part, followed by its images as inline parts
    (every Gemini model accepts those; multimodal function responses are newer)."""
    texts = [c.text for c in part.content if isinstance(c, TextPart)]
    text = "\n".join(texts)
    parsed: Any = None
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    response: dict[str, Any]
    if part.is_error:
        response = {"error": parsed if isinstance(parsed, dict) else text}
    elif isinstance(parsed, dict):
        response = parsed
    else:
        response = {"output": text}
    call: dict[str, Any] = {"name": name, "response": response}
    if part.tool_call_id and not is_synthetic_id(part.tool_call_id):
        call = {"id": part.tool_call_id, **call}
    out: list[dict[str, Any]] = [{"functionResponse": call}]
    out.extend(_image_to_gemini(c) for c in part.content if isinstance(c, ImagePart))
    return out


def parts_to_gemini(
    parts: list[Part], *, call_names: dict[str, str] | None = None, strict: bool
) -> list[dict[str, Any]]:
    """IR parts -> Gemini parts. `call_names` maps tool-call ids to function names for
    results that lack `name`; `strict` is true for caller-supplied requests."""
    out: list[dict[str, Any]] = []
    pending_signature: str | None = None

    def emit(part: dict[str, Any]) -> None:
        nonlocal pending_signature
        if pending_signature is not None:
            part["thoughtSignature"] = pending_signature
            pending_signature = None
        out.append(part)

    for part in parts:
        if isinstance(part, ThinkingPart):
            if part.redacted_data is not None:
                continue  # Anthropic's encrypted reasoning means nothing to Gemini
            if not part.text:
                if part.signature:
                    if pending_signature is not None:
                        out.append({"text": "", "thoughtSignature": pending_signature})
                    pending_signature = part.signature
                continue
            thought: dict[str, Any] = {"text": part.text, "thought": True}
            if part.signature:
                thought["thoughtSignature"] = part.signature
            if pending_signature is not None:
                out.append({"text": "", "thoughtSignature": pending_signature})
                pending_signature = None
            out.append(thought)
        elif isinstance(part, TextPart):
            emit({"text": part.text})
        elif isinstance(part, ImagePart):
            emit(_image_to_gemini(part))
        elif isinstance(part, ToolCallPart):
            call: dict[str, Any] = {
                "name": part.name,
                "args": arguments_object(part.arguments, strict=strict),
            }
            if part.id and not is_synthetic_id(part.id):
                call = {"id": part.id, **call}
            emit({"functionCall": call})
        elif isinstance(part, ToolResultPart):
            name = part.name or (call_names or {}).get(part.tool_call_id)
            if not name:
                raise InvalidRequest(
                    f"tool result {part.tool_call_id!r} answers no earlier tool call", param="messages"
                )
            for gemini_part in tool_result_to_gemini(part, name):
                emit(gemini_part)
    if pending_signature is not None:
        out.append({"text": "", "thoughtSignature": pending_signature})
    return out
