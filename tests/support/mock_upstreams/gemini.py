"""Google Gemini `models/{model}:generateContent`, `:streamGenerateContent?alt=sse` and
`:countTokens` in the real wire format (camelCase JSON; the REST API also accepts the
snake_case spelling of each field, and so does this mock)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .behaviour import (
    MockInvalid,
    MockUnauthorized,
    Plan,
    Turn,
    check_types,
    list_field,
    make_plan,
    pieces,
    signature_for,
)

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# File URIs the mock accepts: Files API resources and Cloud Storage objects.
_GOOGLE_URIS = ("gs://", "https://generativelanguage.googleapis.com/")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def check_auth(headers: dict[str, str], query: dict[str, str]) -> None:
    if not headers.get("x-goog-api-key") and not query.get("key"):
        raise MockUnauthorized(
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )


# Gemini's `Schema` is an OpenAPI 3.0 subset; any other key (additionalProperties,
# $schema, $ref, const, ...) fails the whole request.
_SCHEMA_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise MockInvalid(f"Invalid value at '{where}': expected an object")
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            raise MockInvalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
        if key == "properties":
            for name, sub in (value or {}).items():
                _check_schema(sub, f"{where}.properties[{name}].value")
        elif key == "items":
            _check_schema(value, f"{where}.items")
        elif key == "anyOf":
            for i, sub in enumerate(value or []):
                _check_schema(sub, f"{where}.any_of[{i}]")


def _get(obj: dict[str, Any], camel: str) -> Any:
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake)


def _parts_text(parts: Any, where: str, turn: Turn) -> tuple[str, int, list[str]]:
    """(text, images, function responses) of a parts list."""
    if not isinstance(parts, list) or not parts:
        raise MockInvalid(f"{where}.parts: must contain at least one part")
    texts: list[str] = []
    images = 0
    responses: list[str] = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise MockInvalid(f"{where}.parts[{i}]: expected an object")
        inline, file_data = _get(part, "inlineData"), _get(part, "fileData")
        call, response = _get(part, "functionCall"), _get(part, "functionResponse")
        if isinstance(part.get("text"), str):
            if not part.get("thought"):
                texts.append(part["text"])
        elif isinstance(inline, dict):
            if not _get(inline, "mimeType") or not inline.get("data"):
                raise MockInvalid(f"{where}.parts[{i}].inline_data: mime_type and data are required")
            images += 1
        elif isinstance(file_data, dict):
            uri = _get(file_data, "fileUri")
            if not uri:
                raise MockInvalid(f"{where}.parts[{i}].file_data.file_uri: required")
            if not str(uri).startswith(_GOOGLE_URIS):
                # What the API answered for any other URI before it fetched public ones
                # (and still does for models that do not).
                raise MockInvalid(f"Invalid or unsupported file uri: {uri}")
            images += 1
        elif isinstance(call, dict):
            if not isinstance(call.get("name"), str) or not isinstance(call.get("args", {}), dict):
                raise MockInvalid(f"{where}.parts[{i}].function_call: name and object args required")
            texts.append(json.dumps(call.get("args", {})))
        elif isinstance(response, dict):
            if not isinstance(response.get("name"), str) or not response["name"]:
                raise MockInvalid(f"{where}.parts[{i}].function_response.name: Name cannot be empty.")
            responses.append(json.dumps(response.get("response"), sort_keys=True))
        else:
            raise MockInvalid(f"{where}.parts[{i}]: Unknown part kind {sorted(part)}")
    turn.prompt_images += images
    return " ".join(texts), images, responses


def parse_generate(body: Any, model: str) -> Turn:
    if not isinstance(body, dict):
        raise MockInvalid("Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise MockInvalid("* GenerateContentRequest.contents: contents is not specified")
    turn = Turn(model=model)
    texts: list[str] = []
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict) or content.get("role", "user") not in ("user", "model"):
            raise MockInvalid(f"{where}.role: Please use a valid role: user, model.")
        text, images, responses = _parts_text(content.get("parts"), where, turn)
        texts.extend([text, *responses])
        if content.get("role", "user") == "user":
            turn.user_turns += 1
            turn.tool_results = responses
            if not responses:
                turn.last_user_text, turn.images = text, images
    system = _get(body, "systemInstruction")
    if isinstance(system, dict):
        turn.system = _parts_text(system.get("parts"), "system_instruction", turn)[0]
        texts.append(turn.system)
    for i, tool in enumerate(list_field(body, "tools")):
        for j, declaration in enumerate(_get(tool, "functionDeclarations") or []):
            if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str):
                raise MockInvalid(f"tools[{i}].function_declarations[{j}].name: required")
            if "parameters" in declaration:
                _check_schema(declaration["parameters"], f"tools[{i}].function_declarations[{j}].parameters")
            turn.tools.append(declaration["name"])
    config = _get(body, "generationConfig") or {}
    if not isinstance(config, dict):
        raise MockInvalid("generation_config: expected an object")
    check_types(
        config, ("temperature", "topP"), ("topK", "maxOutputTokens", "candidateCount"), "generation_config."
    )
    thinking = _get(config, "thinkingConfig") if isinstance(config, dict) else None
    # Gemini returns thought summaries only when asked for them with includeThoughts.
    turn.thinking = isinstance(thinking, dict) and bool(_get(thinking, "includeThoughts"))
    turn.prompt_text = " ".join(t for t in texts if t)
    return turn


def _usage(plan: Plan) -> dict[str, Any]:
    # candidatesTokenCount excludes thoughts; totalTokenCount includes them.
    usage = {
        "promptTokenCount": plan.input_tokens,
        "candidatesTokenCount": plan.output_tokens - plan.reasoning_tokens,
        "totalTokenCount": plan.input_tokens + plan.output_tokens,
    }
    if plan.reasoning_tokens:
        usage["thoughtsTokenCount"] = plan.reasoning_tokens
    return usage


def _response(
    parts: list[dict[str, Any]], model: str, finish: str | None, usage: dict[str, Any] | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    result: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "mock-response"}
    if usage:
        result["usageMetadata"] = usage
    return result


def _call_part(plan: Plan) -> dict[str, Any]:
    assert plan.tool_call
    name, args = plan.tool_call
    part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
    if plan.thinking:
        part["thoughtSignature"] = signature_for(plan.thinking)
    return part


def generate(turn: Turn) -> dict[str, Any]:
    plan = make_plan(turn)
    parts: list[dict[str, Any]] = []
    if plan.thinking:
        parts.append({"text": plan.thinking, "thought": True})
    if plan.text:
        parts.append({"text": plan.text})
    if plan.tool_call:
        parts.append(_call_part(plan))
    return _response(parts, turn.model, "STOP", _usage(plan) if plan.with_usage else None)


def count_tokens(turn: Turn) -> dict[str, Any]:
    return {"totalTokens": make_plan(turn).input_tokens}


async def stream(turn: Turn) -> AsyncIterator[bytes]:
    """As Gemini streams: whole parts per chunk, usageMetadata on every chunk (running
    figures, the last one final), and with thinking on a closing empty text part that
    carries the thought signature."""
    plan = make_plan(turn)
    chunks: list[list[dict[str, Any]]] = []
    if plan.thinking:
        chunks.extend([[{"text": piece, "thought": True}] for piece in pieces(plan.thinking)])
    if plan.text:
        chunks.extend([[{"text": piece}] for piece in pieces(plan.text)])
    if plan.tool_call:
        chunks.append([_call_part(plan)])  # Gemini sends function calls whole, never in fragments
    elif plan.thinking:
        chunks.append([{"text": "", "thoughtSignature": signature_for(plan.thinking)}])
    for i, parts in enumerate(chunks):
        last = i == len(chunks) - 1
        usage: dict[str, Any] | None = None
        if plan.with_usage:
            running = {"promptTokenCount": plan.input_tokens, "totalTokenCount": plan.input_tokens + i}
            usage = _usage(plan) if last else running
        payload = _response(parts, turn.model, "STOP" if last else None, usage)
        # Google's SSE separates events with CRLF pairs.
        yield b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"
