"""OpenAI Chat Completions requests <-> IR (`openai_chat.OpenAIChatCodec` uses these).

Also reads what OpenAI-compatible servers add: `reasoning_content` on assistant turns
(DeepSeek, Qwen) and `top_k` (vLLM, DashScope).
"""

from __future__ import annotations

import re
from typing import Any

from .checks import (
    bad,
    check_schema,
    data_url,
    opt_bool,
    opt_int,
    opt_number,
    opt_str,
    parse_data_url,
    req_dict,
    req_list,
    req_str,
    stop_list,
)
from .ir import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from .reasoning import budget_to_effort

__all__ = ["build_openai_request", "parse_openai_request"]

_KNOWN = {
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens",
    "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "stream",
    "stream_options", "reasoning_effort", "user",
}  # fmt: skip
_EFFORTS = {"none", "minimal", "low", "medium", "high"}
# OpenAI's reasoning models take only `max_completion_tokens`; older OpenAI-compatible
# servers (DeepSeek, Ollama, DashScope) know only `max_tokens`.
_COMPLETION_TOKENS_MODELS = re.compile(r"^(o\d|gpt-5)")


# --- caller -> IR --------------------------------------------------------------------


def parse_openai_request(payload: Any) -> ChatRequest:
    body = req_dict(payload, "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' must be a non-empty string", "model", "invalid_type")
    raw_messages = body.get("messages")
    if raw_messages is None:
        raise bad("you must provide a messages parameter", "messages", "missing_required_parameter")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise bad("'messages' must be a non-empty array", "messages", "invalid_type")
    system, messages = _parse_messages(raw_messages)
    tools = _parse_tools(body.get("tools"))
    options = body.get("stream_options")
    stream_usage = (
        bool(req_dict(options, "stream_options").get("include_usage")) if options is not None else False
    )
    max_tokens = opt_int(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = opt_int(body, "max_tokens", 1)
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=_parse_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
        max_tokens=max_tokens,
        temperature=opt_number(body, "temperature"),
        top_p=opt_number(body, "top_p"),
        top_k=opt_int(body, "top_k"),
        stop=stop_list(body.get("stop"), "stop"),
        stream=bool(opt_bool(body, "stream")),
        stream_usage=stream_usage,
        reasoning=_parse_effort(body),
        user=opt_str(body, "user", ""),
        extra={k: v for k, v in body.items() if k not in _KNOWN},
    )


def _parse_effort(body: dict[str, Any]) -> Reasoning | None:
    effort = opt_str(body, "reasoning_effort", "")
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise bad(f"'reasoning_effort' must be one of {sorted(_EFFORTS)}", "reasoning_effort")
    if effort == "none":
        return Reasoning(enabled=False)
    return Reasoning(effort=effort)


def _parse_messages(raw: list[Any]) -> tuple[list[TextPart], list[Message]]:
    system: list[TextPart] = []
    messages: list[Message] = []
    tool_names: dict[str, str] = {}
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        msg = req_dict(item, where)
        role = msg.get("role")
        if role in ("system", "developer"):
            # Anthropic and Gemini have one system prompt: system turns anywhere join it.
            system.extend(p for p in _content(msg.get("content"), where, images=False) if p.text)
        elif role == "user":
            messages.append(Message("user", list(_content(msg.get("content"), where, images=True))))
        elif role == "assistant":
            messages.append(_parse_assistant(msg, where, tool_names))
        elif role == "tool":
            call_id = req_str(msg.get("tool_call_id"), f"{where}.tool_call_id")
            result = ToolResultPart(
                call_id, list(_content(msg.get("content"), where, images=True)), name=tool_names.get(call_id)
            )
            last = messages[-1] if messages else None
            if (
                last is not None
                and last.role == "user"
                and all(isinstance(p, ToolResultPart) for p in last.parts)
            ):
                last.parts.append(result)  # consecutive results answer one assistant turn
            else:
                messages.append(Message("user", [result]))
        else:
            raise bad(f"'{where}.role' must be system, developer, user, assistant or tool", f"{where}.role")
    if not messages:
        raise bad("'messages' must contain at least one user or assistant message", "messages")
    return system, messages


def _parse_assistant(msg: dict[str, Any], where: str, tool_names: dict[str, str]) -> Message:
    parts: list[Part] = []
    reasoning = msg.get("reasoning_content")
    if reasoning:
        parts.append(ThinkingPart(req_str(reasoning, f"{where}.reasoning_content")))
    parts.extend(p for p in _content(msg.get("content"), where, images=False) if p.text)
    calls = msg.get("tool_calls")
    for j, call in enumerate(req_list(calls, f"{where}.tool_calls") if calls is not None else []):
        cw = f"{where}.tool_calls[{j}]"
        call = req_dict(call, cw)
        fn = req_dict(call.get("function"), f"{cw}.function")
        name = req_str(fn.get("name"), f"{cw}.function.name")
        arguments = fn.get("arguments")
        call_id = req_str(call.get("id"), f"{cw}.id")
        tool_names[call_id] = name
        parts.append(ToolCallPart(call_id, name, "" if arguments is None else req_str(arguments, cw)))
    return Message("assistant", parts)


def _content(content: Any, where: str, *, images: bool) -> list[Any]:
    """Text (and image) parts of a message's `content`: a string or an array of parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[TextPart | ImagePart] = []
    for k, item in enumerate(req_list(content, f"{where}.content")):
        pw = f"{where}.content[{k}]"
        part = req_dict(item, pw)
        kind = part.get("type")
        if kind == "text":
            parts.append(TextPart(req_str(part.get("text"), f"{pw}.text")))
        elif kind == "refusal":
            parts.append(TextPart(req_str(part.get("refusal"), f"{pw}.refusal")))
        elif kind == "image_url" and images:
            parts.append(_image(part.get("image_url"), f"{pw}.image_url"))
        else:
            raise bad(f"'{pw}.type' {kind!r} is not supported here", f"{pw}.type")
    return parts


def _image(value: Any, where: str) -> ImagePart:
    if isinstance(value, str):  # some clients send the URL bare
        value = {"url": value}
    obj = req_dict(value, where)
    url = req_str(obj.get("url"), f"{where}.url")
    detail = opt_str(obj, "detail", where)
    image = parse_data_url(url, f"{where}.url") or ImagePart(url=url)
    image.detail = detail
    return image


def _parse_tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    tools = []
    for i, item in enumerate(req_list(raw, "tools")):
        where = f"tools[{i}]"
        tool = req_dict(item, where)
        if tool.get("type", "function") != "function":
            raise bad(f"'{where}.type' must be 'function'", f"{where}.type")
        fn = req_dict(tool.get("function"), f"{where}.function")
        name = req_str(fn.get("name"), f"{where}.function.name")
        if not name:
            raise bad(f"'{where}.function.name' must not be empty", f"{where}.function.name")
        params = fn.get("parameters")
        params = (
            {"type": "object", "properties": {}}
            if params is None
            else check_schema(params, f"{where}.function.parameters")
        )
        tools.append(Tool(name, opt_str(fn, "description", f"{where}.function"), params))
    return tools


def _parse_tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise bad("'tool_choice' must be auto, none, required or a function", "tool_choice")
        return ToolChoice(raw)
    choice = req_dict(raw, "tool_choice")
    fn = req_dict(choice.get("function"), "tool_choice.function")
    return ToolChoice("tool", req_str(fn.get("name"), "tool_choice.function.name"))


# --- IR -> upstream ------------------------------------------------------------------


def build_openai_request(request: ChatRequest, upstream_model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": upstream_model, "messages": _build_messages(request)}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
        if request.tool_choice is not None:
            mode = request.tool_choice.mode
            body["tool_choice"] = (
                {"type": "function", "function": {"name": request.tool_choice.name}}
                if mode == "tool"
                else mode
            )
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.max_tokens is not None:
        key = "max_completion_tokens" if _COMPLETION_TOKENS_MODELS.match(upstream_model) else "max_tokens"
        body[key] = request.max_tokens
    for key in ("temperature", "top_p"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.stop:
        body["stop"] = request.stop
    if request.reasoning is not None and request.reasoning.enabled:
        body["reasoning_effort"] = request.reasoning.effort or budget_to_effort(
            request.reasoning.budget_tokens
        )
    if request.user:
        body["user"] = request.user
    if request.stream:
        # The gateway meters every stream, so it always asks for the usage chunk.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _build_messages(request: ChatRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": "\n\n".join(p.text for p in request.system)})
    for msg in request.messages:
        if msg.role == "assistant":
            out.append(_build_assistant(msg.parts))
            continue
        content: list[dict[str, Any]] = []
        for part in msg.parts:
            if isinstance(part, ToolResultPart):
                # Tool messages hold text only; images a tool returned ride in the user
                # turn that follows.
                text = "\n".join(p.text for p in part.content if isinstance(p, TextPart))
                out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": text})
                content.extend(_image_part(p) for p in part.content if isinstance(p, ImagePart))
            elif isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                content.append(_image_part(part))
        if len(content) == 1 and content[0]["type"] == "text":
            out.append({"role": "user", "content": content[0]["text"]})
        elif content:
            out.append({"role": "user", "content": content})
    return out


def _build_assistant(parts: list[Part]) -> dict[str, Any]:
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}}
        for p in parts
        if isinstance(p, ToolCallPart)
    ]
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        msg["tool_calls"] = calls
        # DeepSeek's thinking mode wants the reasoning of a tool-calling turn sent back;
        # elsewhere reasoning is not replayed (deepseek-reasoner rejects it).
        thinking = "".join(p.text for p in parts if isinstance(p, ThinkingPart))
        if thinking:
            msg["reasoning_content"] = thinking
    elif not text:
        msg["content"] = ""
    return msg


def _image_part(image: ImagePart) -> dict[str, Any]:
    url = data_url(image) if image.data is not None else image.url
    inner: dict[str, Any] = {"url": url}
    if image.detail:
        inner["detail"] = image.detail
    return {"type": "image_url", "image_url": inner}
