"""Gemini `GenerateContentRequest` bodies <-> IR `ChatRequest`.

The model and streaming choice live in Gemini's URL (`models/{model}:generateContent`
vs `:streamGenerateContent?alt=sse`), not in the body: `parse_request` takes the model
from an optional `model` key the inbound surface may add, and `build_request` returns
only the body (see `gemini.gemini_path` for the URL).

Fields with no IR equivalent (safetySettings, cachedContent, candidateCount,
includeThoughts, built-in tools, ...) are kept under `ChatRequest.extra["gemini"]` and
written back only by this codec, so other protocols never receive them.
"""

from __future__ import annotations

import itertools
from typing import Any

from switchyard_common.errors import InvalidRequest

from .gemini_parts import SYNTHETIC_ID_PREFIX, parts_from_gemini, parts_to_gemini
from .gemini_schema import from_gemini_schema, to_gemini_schema
from .ir import (
    ChatRequest,
    Message,
    Reasoning,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from .reasoning import budget_to_effort, effort_to_budget

__all__ = ["EXTRA_KEY", "SKIP_SIGNATURE_VALIDATION", "build_gemini_request", "parse_gemini_request"]

EXTRA_KEY = "gemini"
SKIP_SIGNATURE_VALIDATION = "skip_thought_signature_validator"
_GEN = "generationConfig"

_MODES_IN = {"AUTO": "auto", "ANY": "required", "NONE": "none", "VALIDATED": "auto"}
_MODES_OUT = {"auto": "AUTO", "required": "ANY", "none": "NONE", "tool": "ANY"}
_KNOWN_TOP = {
    "model",
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
}
_KNOWN_GEN = {
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "maxOutputTokens",
    "max_output_tokens",
    "stopSequences",
    "stop_sequences",
    "thinkingConfig",
    "thinking_config",
}


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _number(value: Any, where: str, *, integer: bool = False) -> Any:
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool):
        raise InvalidRequest(f"{where} must be {'an integer' if integer else 'a number'}", param=where)
    return value


# --- Gemini -> IR --------------------------------------------------------------------


def parse_gemini_request(payload: dict[str, Any]) -> ChatRequest:
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = payload.get("model", "")
    if not isinstance(model, str):
        raise InvalidRequest("model must be a string", param="model")
    model = model.removeprefix("models/")

    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("contents must be a non-empty list", param="contents")
    counter = itertools.count()

    def new_id() -> str:
        # Positional, so re-parsing the same history gives the same ids.
        return f"{SYNTHETIC_ID_PREFIX}{next(counter)}"

    pending: list[tuple[str, str]] = []
    messages: list[Message] = []
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        role = content.get("role", "user")
        # "function" is the role older Gemini clients gave functionResponse turns.
        if role not in ("user", "model", "function"):
            raise InvalidRequest(f"{where}.role must be 'user' or 'model'", param=where)
        parts = parts_from_gemini(content.get("parts"), where, new_id=new_id, pending_calls=pending)
        messages.append(Message(role="assistant" if role == "model" else "user", parts=parts))

    request = ChatRequest(model=model, messages=messages, stream_usage=True)
    extra: dict[str, Any] = {k: v for k, v in payload.items() if k not in _KNOWN_TOP}

    system = _get(payload, "systemInstruction", "system_instruction")
    if system is not None:
        if isinstance(system, str):
            request.system = [TextPart(system)]
        elif isinstance(system, dict):
            sys_parts = parts_from_gemini(system.get("parts"), "systemInstruction", new_id=new_id)
            request.system = [p for p in sys_parts if isinstance(p, TextPart)]
        else:
            raise InvalidRequest("systemInstruction must be a Content object", param="systemInstruction")

    tools = payload.get("tools")
    if tools is not None:
        request.tools, other_tools = _parse_tools(tools)
        if other_tools:
            extra["tools"] = other_tools

    tool_config = _get(payload, "toolConfig", "tool_config")
    if tool_config is not None:
        request.tool_choice = _parse_tool_config(tool_config, extra)

    gen = _get(payload, "generationConfig", "generation_config")
    if gen is not None:
        _parse_generation_config(gen, request, extra)
    if extra:
        request.extra[EXTRA_KEY] = extra
    return request


def _parse_tools(tools: Any) -> tuple[list[Tool], list[Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be a list", param="tools")
    out: list[Tool] = []
    others: list[Any] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools[{i}] must be an object", param="tools")
        decls = _get(tool, "functionDeclarations", "function_declarations")
        rest = {k: v for k, v in tool.items() if k not in ("functionDeclarations", "function_declarations")}
        if rest:
            others.append(rest)  # googleSearch, codeExecution, ...: Gemini-only tools
        if decls is None:
            continue
        if not isinstance(decls, list):
            raise InvalidRequest(f"tools[{i}].functionDeclarations must be a list", param="tools")
        for j, decl in enumerate(decls):
            where = f"tools[{i}].functionDeclarations[{j}]"
            if not isinstance(decl, dict):
                raise InvalidRequest(f"{where} must be an object", param="tools")
            name = decl.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"{where}.name must be a non-empty string", param="tools")
            description = decl.get("description")
            if description is not None and not isinstance(description, str):
                raise InvalidRequest(f"{where}.description must be a string", param="tools")
            params = decl.get("parameters")
            json_schema = _get(decl, "parametersJsonSchema", "parameters_json_schema")
            if json_schema is not None:
                if not isinstance(json_schema, dict):
                    raise InvalidRequest(f"{where}.parametersJsonSchema must be an object", param="tools")
                schema = json_schema
            elif params is not None:
                schema = from_gemini_schema(params, where=f"{where}.parameters")
            else:
                schema = {"type": "object", "properties": {}}
            out.append(Tool(name=name, description=description, parameters=schema))
    return out, others


def _parse_tool_config(config: Any, extra: dict[str, Any]) -> ToolChoice | None:
    if not isinstance(config, dict):
        raise InvalidRequest("toolConfig must be an object", param="toolConfig")
    fcc = _get(config, "functionCallingConfig", "function_calling_config")
    rest = {k: v for k, v in config.items() if k not in ("functionCallingConfig", "function_calling_config")}
    if rest:
        extra["toolConfig"] = rest
    if fcc is None:
        return None
    if not isinstance(fcc, dict):
        raise InvalidRequest("toolConfig.functionCallingConfig must be an object", param="toolConfig")
    mode = fcc.get("mode", "AUTO")
    if not isinstance(mode, str) or mode.upper() not in _MODES_IN and mode.upper() != "MODE_UNSPECIFIED":
        raise InvalidRequest(
            "functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED", param="toolConfig"
        )
    names = _get(fcc, "allowedFunctionNames", "allowed_function_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise InvalidRequest("allowedFunctionNames must be a list of strings", param="toolConfig")
    choice = ToolChoice(mode=_MODES_IN.get(mode.upper(), "auto"))
    if names and choice.mode == "required" and len(names) == 1:
        return ToolChoice(mode="tool", name=names[0])
    if names:
        # The IR cannot restrict to a subset; keep the list for Gemini upstreams.
        extra["allowedFunctionNames"] = names
    return choice


def _parse_generation_config(gen: Any, request: ChatRequest, extra: dict[str, Any]) -> None:
    if not isinstance(gen, dict):
        raise InvalidRequest("generationConfig must be an object", param=_GEN)
    request.temperature = _number(gen.get("temperature"), "generationConfig.temperature")
    request.top_p = _number(_get(gen, "topP", "top_p"), "generationConfig.topP")
    request.top_k = _number(_get(gen, "topK", "top_k"), "generationConfig.topK", integer=True)
    request.max_tokens = _number(
        _get(gen, "maxOutputTokens", "max_output_tokens"), "generationConfig.maxOutputTokens", integer=True
    )
    stops = _get(gen, "stopSequences", "stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest(
                "generationConfig.stopSequences must be a list of strings", param="generationConfig"
            )
        request.stop = list(stops)
    thinking = _get(gen, "thinkingConfig", "thinking_config")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise InvalidRequest(
                "generationConfig.thinkingConfig must be an object", param="generationConfig"
            )
        budget = _number(
            _get(thinking, "thinkingBudget", "thinking_budget"), "thinkingConfig.thinkingBudget", integer=True
        )
        level = _get(thinking, "thinkingLevel", "thinking_level")
        if level is not None and not isinstance(level, str):
            raise InvalidRequest("thinkingConfig.thinkingLevel must be a string", param=_GEN)
        include = _get(thinking, "includeThoughts", "include_thoughts")
        if include is not None and not isinstance(include, bool):
            raise InvalidRequest("thinkingConfig.includeThoughts must be a boolean", param=_GEN)
        if budget == 0:
            request.reasoning = Reasoning(enabled=False, budget_tokens=0)
        elif budget is not None and budget > 0:
            request.reasoning = Reasoning(budget_tokens=budget, effort=budget_to_effort(budget))
        elif level is not None:
            request.reasoning = Reasoning(effort=level.lower())
        elif budget == -1 or include:
            request.reasoning = Reasoning()  # dynamic: the model picks its budget
        if include is not True:
            extra["includeThoughts"] = include  # None: the caller left it out
    rest = {k: v for k, v in gen.items() if k not in _KNOWN_GEN}
    if rest:
        extra["generationConfig"] = rest


# --- IR -> Gemini --------------------------------------------------------------------


def build_gemini_request(request: ChatRequest, upstream_model: str = "") -> dict[str, Any]:
    extra = request.extra.get(EXTRA_KEY)
    extra = extra if isinstance(extra, dict) else {}
    call_names = {
        part.id: part.name
        for message in request.messages
        for part in message.parts
        if isinstance(part, ToolCallPart)
    }
    contents: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role not in ("user", "assistant"):
            raise InvalidRequest(f"unknown message role {message.role!r}", param="messages")
        role = "model" if message.role == "assistant" else "user"
        parts = parts_to_gemini(message.parts, call_names=call_names, strict=True)
        if not parts:
            continue  # Gemini refuses a Content without parts
        has_results = any(isinstance(p, ToolResultPart) for p in message.parts)
        # Gemini wants every answer to a parallel call in one Content; protocols that send
        # one message per tool result (OpenAI `role: tool`) are merged here.
        if (
            contents
            and contents[-1]["role"] == role
            and (has_results or _has_function_responses(contents[-1]))
        ):
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if not contents:
        raise InvalidRequest("request has no message content", param="messages")
    if _validates_signatures(upstream_model):
        for content in contents:
            if content["role"] == "model":
                _sign_unsigned_step(content["parts"])

    body: dict[str, Any] = {"contents": contents}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": part.text} for part in request.system]}
    tools: list[dict[str, Any]] = []
    if request.tools:
        decls = []
        for tool in request.tools:
            decl: dict[str, Any] = {"name": tool.name}
            if tool.description:
                decl["description"] = tool.description
            params = to_gemini_schema(tool.parameters)
            if params is not None:
                decl["parameters"] = params
            decls.append(decl)
        tools.append({"functionDeclarations": decls})
    extra_tools = extra.get("tools")
    if isinstance(extra_tools, list):
        tools.extend(extra_tools)
    if tools:
        body["tools"] = tools
    tool_config = _build_tool_config(request, extra)
    if tool_config:
        body["toolConfig"] = tool_config
    gen = _build_generation_config(request, extra)
    if gen:
        body["generationConfig"] = gen
    for key, value in extra.items():
        if key not in ("tools", "toolConfig", "generationConfig", "includeThoughts", "allowedFunctionNames"):
            body[key] = value
    return body


def _validates_signatures(model: str) -> bool:
    # Gemini 3 and later refuse a replayed step whose function calls lost their thought
    # signature; 1.x / 2.x do not check. Unknown names and aliases count as newer.
    name = model.removeprefix("models/")
    return not name.startswith(("gemini-1", "gemini-2"))


def _sign_unsigned_step(parts: list[dict[str, Any]]) -> None:
    """OpenAI callers cannot carry signatures, and other models never made one: give the
    step's first function call Gemini's documented placeholder so validation is skipped
    (the model then reasons without its earlier thoughts, as with any foreign history)."""
    calls = [part for part in parts if "functionCall" in part]
    if calls and not any("thoughtSignature" in part for part in calls):
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE_VALIDATION


def _has_function_responses(content: dict[str, Any]) -> bool:
    return any("functionResponse" in part for part in content["parts"])


def _build_tool_config(request: ChatRequest, extra: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = dict(extra.get("toolConfig") or {})
    choice = request.tool_choice
    if choice is not None:
        if choice.mode not in _MODES_OUT:
            raise InvalidRequest(f"unknown tool_choice mode {choice.mode!r}", param="tool_choice")
        fcc: dict[str, Any] = {"mode": _MODES_OUT[choice.mode]}
        if choice.mode == "tool":
            if not choice.name:
                raise InvalidRequest("tool_choice names no tool", param="tool_choice")
            fcc["allowedFunctionNames"] = [choice.name]
        elif isinstance(extra.get("allowedFunctionNames"), list):
            fcc["allowedFunctionNames"] = extra["allowedFunctionNames"]
        config["functionCallingConfig"] = fcc
    return config


def _build_generation_config(request: ChatRequest, extra: dict[str, Any]) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    if request.temperature is not None:
        gen["temperature"] = request.temperature
    if request.top_p is not None:
        gen["topP"] = request.top_p
    if request.top_k is not None:
        gen["topK"] = request.top_k
    if request.max_tokens is not None:
        gen["maxOutputTokens"] = request.max_tokens
    if request.stop:
        gen["stopSequences"] = list(request.stop)
    reasoning = request.reasoning
    if reasoning is not None:
        thinking: dict[str, Any]
        if not reasoning.enabled:
            thinking = {"thinkingBudget": 0}
        else:
            if reasoning.budget_tokens is not None:
                budget = reasoning.budget_tokens
            elif reasoning.effort is not None:
                budget = effort_to_budget(reasoning.effort)
            else:
                budget = -1
            # A caller that asked for reasoning wants to see it (Anthropic thinking blocks,
            # OpenAI-compatible reasoning_content); Gemini hides thoughts unless told.
            thinking = {"thinkingBudget": budget}
            include = extra.get("includeThoughts", True)
            if include is not None:
                thinking["includeThoughts"] = include
        gen["thinkingConfig"] = thinking
    rest = extra.get("generationConfig")
    if isinstance(rest, dict):
        gen.update(rest)
    return gen
