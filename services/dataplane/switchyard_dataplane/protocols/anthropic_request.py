"""Anthropic Messages requests <-> IR (`anthropic_messages.AnthropicMessagesCodec` uses these).

Building for Anthropic keeps its rules so a translated request is accepted:
`max_tokens` is required (DEFAULT_MAX_TOKENS, plus the thinking budget, when the caller
gave none); consecutive turns of one role are merged with tool results first; thinking
without a signature (DeepSeek / Qwen reasoning, or an OpenAI caller replaying it) is left
out, as Anthropic rejects unsigned thinking; with thinking on, `temperature` / `top_k`
are dropped and `top_p` kept only from 0.95, as Anthropic requires; a forced tool choice
wins over thinking (Anthropic refuses the pair); tool-call ids are reduced to the
characters Anthropic allows.
"""

from __future__ import annotations

import re
from typing import Any

from .checks import (
    bad,
    check_schema,
    dump_json,
    load_arguments,
    opt_bool,
    opt_int,
    opt_number,
    opt_str,
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
from .reasoning import MIN_THINKING_BUDGET, effort_to_budget

__all__ = ["DEFAULT_MAX_TOKENS", "build_anthropic_request", "parse_anthropic_request"]

# Every Claude model can produce at least this many tokens in one answer.
DEFAULT_MAX_TOKENS = 4096
_KNOWN = {
    "model", "messages", "system", "max_tokens", "tools", "tool_choice", "temperature",
    "top_p", "top_k", "stop_sequences", "stream", "thinking", "metadata",
}  # fmt: skip
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


# --- caller -> IR --------------------------------------------------------------------


def parse_anthropic_request(payload: Any) -> ChatRequest:
    body = req_dict(payload, "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model: Field required (a non-empty string)", "model", "invalid_type")
    max_tokens = opt_int(body, "max_tokens", 1)
    if max_tokens is None:
        raise bad("max_tokens: Field required", "max_tokens", "missing_required_parameter")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("messages: must be a non-empty array", "messages", "invalid_type")
    tool_names: dict[str, str] = {}
    messages = [_parse_message(item, f"messages[{i}]", tool_names) for i, item in enumerate(raw)]
    tool_choice, parallel = _parse_tool_choice(body.get("tool_choice"))
    metadata = body.get("metadata")
    user = opt_str(req_dict(metadata, "metadata"), "user_id", "metadata") if metadata is not None else None
    return ChatRequest(
        model=model,
        messages=messages,
        system=_parse_system(body.get("system")),
        tools=_parse_tools(body.get("tools")),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=max_tokens,
        temperature=opt_number(body, "temperature"),
        top_p=opt_number(body, "top_p"),
        top_k=opt_int(body, "top_k"),
        stop=stop_list(body.get("stop_sequences"), "stop_sequences"),
        stream=bool(opt_bool(body, "stream")),
        stream_usage=True,
        reasoning=_parse_thinking(body.get("thinking")),
        user=user,
        extra={k: v for k, v in body.items() if k not in _KNOWN},
    )


def _parse_system(raw: Any) -> list[TextPart]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(raw)] if raw else []
    parts = []
    for i, item in enumerate(req_list(raw, "system")):
        block = req_dict(item, f"system[{i}]")
        if block.get("type") != "text":
            raise bad(f"system[{i}].type must be 'text'", f"system[{i}].type")
        parts.append(TextPart(req_str(block.get("text"), f"system[{i}].text")))
    return parts


def _parse_message(item: Any, where: str, tool_names: dict[str, str]) -> Message:
    msg = req_dict(item, where)
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise bad(f"{where}.role: must be 'user' or 'assistant'", f"{where}.role")
    content = msg.get("content")
    if isinstance(content, str):
        return Message(role, [TextPart(content)])
    parts: list[Part] = []
    for k, raw in enumerate(req_list(content, f"{where}.content")):
        parts.append(_parse_block(raw, f"{where}.content[{k}]", role, tool_names))
    return Message(role, parts)


def _parse_block(raw: Any, where: str, role: str, tool_names: dict[str, str]) -> Part:
    block = req_dict(raw, where)
    kind = block.get("type")
    if kind == "text":
        return TextPart(req_str(block.get("text"), f"{where}.text"))
    if kind == "image":
        return _parse_image(block, where)
    if kind == "tool_use" and role == "assistant":
        call_id = req_str(block.get("id"), f"{where}.id")
        name = req_str(block.get("name"), f"{where}.name")
        tool_names[call_id] = name
        return ToolCallPart(call_id, name, dump_json(req_dict(block.get("input", {}), f"{where}.input")))
    if kind == "tool_result" and role == "user":
        call_id = req_str(block.get("tool_use_id"), f"{where}.tool_use_id")
        content = block.get("content")
        results: list[TextPart | ImagePart] = []
        if isinstance(content, str):
            results.append(TextPart(content))
        elif content is not None:
            for j, sub in enumerate(req_list(content, f"{where}.content")):
                part = _parse_block(sub, f"{where}.content[{j}]", role, tool_names)
                if not isinstance(part, TextPart | ImagePart):
                    raise bad(f"{where}.content[{j}]: only text and image blocks", f"{where}.content")
                results.append(part)
        return ToolResultPart(call_id, results, bool(opt_bool(block, "is_error")), tool_names.get(call_id))
    if kind == "thinking" and role == "assistant":
        signature = opt_str(block, "signature", where)
        return ThinkingPart(req_str(block.get("thinking"), f"{where}.thinking"), signature or None)
    if kind == "redacted_thinking" and role == "assistant":
        return ThinkingPart("", redacted_data=req_str(block.get("data"), f"{where}.data"))
    raise bad(f"{where}.type: {kind!r} is not supported in a {role} message", f"{where}.type")


def _parse_image(block: dict[str, Any], where: str) -> ImagePart:
    source = req_dict(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        return ImagePart(
            data=req_str(source.get("data"), f"{where}.source.data"),
            media_type=req_str(source.get("media_type"), f"{where}.source.media_type"),
        )
    if kind == "url":
        return ImagePart(url=req_str(source.get("url"), f"{where}.source.url"))
    raise bad(f"{where}.source.type: must be 'base64' or 'url'", f"{where}.source.type")


def _parse_tools(raw: Any) -> list[Tool]:
    tools = []
    for i, item in enumerate(req_list(raw, "tools") if raw is not None else []):
        where = f"tools[{i}]"
        tool = req_dict(item, where)
        if tool.get("type") not in (None, "custom"):
            raise bad(f"{where}.type: server tool {tool.get('type')!r} cannot be translated", f"{where}.type")
        name = req_str(tool.get("name"), f"{where}.name")
        if not name:
            raise bad(f"{where}.name: must not be empty", f"{where}.name")
        schema = check_schema(tool.get("input_schema"), f"{where}.input_schema")
        tools.append(Tool(name, opt_str(tool, "description", where), schema))
    return tools


def _parse_tool_choice(raw: Any) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    choice = req_dict(raw, "tool_choice")
    kind = choice.get("type")
    disable = opt_bool(choice, "disable_parallel_tool_use", "tool_choice")
    parallel = None if disable is None else not disable
    if kind == "auto":
        return ToolChoice("auto"), parallel
    if kind == "any":
        return ToolChoice("required"), parallel
    if kind == "none":
        return ToolChoice("none"), parallel
    if kind == "tool":
        return ToolChoice("tool", req_str(choice.get("name"), "tool_choice.name")), parallel
    raise bad("tool_choice.type: must be auto, any, tool or none", "tool_choice.type")


def _parse_thinking(raw: Any) -> Reasoning | None:
    if raw is None:
        return None
    thinking = req_dict(raw, "thinking")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = opt_int(thinking, "budget_tokens", 1)
        if budget is None:
            raise bad("thinking.budget_tokens: Field required", "thinking.budget_tokens")
        return Reasoning(budget_tokens=budget)
    if kind == "disabled":
        return Reasoning(enabled=False)
    if kind == "adaptive":
        return Reasoning()
    raise bad("thinking.type: must be 'enabled', 'adaptive' or 'disabled'", "thinking.type")


# --- IR -> upstream ------------------------------------------------------------------


def build_anthropic_request(request: ChatRequest, upstream_model: str) -> dict[str, Any]:
    budget = _thinking_budget(request)
    max_tokens = request.max_tokens
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS + (budget or 0)
    body: dict[str, Any] = {"model": upstream_model, "max_tokens": max_tokens}
    if request.system:
        texts = [p.text for p in request.system if p.text]
        body["system"] = texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
    body["messages"] = _build_messages(request.messages)
    if request.tools:
        body["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": {"type": "object", **t.parameters},
            }
            for t in request.tools
        ]
        choice = _build_tool_choice(request)
        if choice is not None:
            body["tool_choice"] = choice
    if request.stop:
        body["stop_sequences"] = request.stop
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if request.top_p is not None and request.top_p >= 0.95:
            body["top_p"] = request.top_p
    else:
        if request.temperature is not None:
            body["temperature"] = min(max(request.temperature, 0.0), 1.0)  # OpenAI's scale ends at 2
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.top_k is not None:
            body["top_k"] = request.top_k
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if request.stream:
        body["stream"] = True
    return body


def _thinking_budget(request: ChatRequest) -> int | None:
    reasoning = request.reasoning
    if reasoning is None or not reasoning.enabled:
        return None
    if request.tool_choice is not None and request.tool_choice.mode in ("required", "tool"):
        return None
    budget = max(MIN_THINKING_BUDGET, reasoning.budget_tokens or effort_to_budget(reasoning.effort))
    if request.max_tokens is not None and budget >= request.max_tokens:
        # OpenAI's max_completion_tokens covers reasoning too: share it with the answer.
        budget = request.max_tokens // 2
        if budget < MIN_THINKING_BUDGET:
            return None
    return budget


def _build_tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    mode = choice.mode if choice is not None else None
    wire: dict[str, Any] | None
    if mode == "tool" and choice is not None:
        wire = {"type": "tool", "name": choice.name}
    elif mode == "required":
        wire = {"type": "any"}
    elif mode == "none":
        return {"type": "none"}
    elif mode == "auto" or request.parallel_tool_calls is False:
        wire = {"type": "auto"}
    else:
        return None
    if request.parallel_tool_calls is False:
        wire["disable_parallel_tool_use"] = True
    return wire


def _tool_id(call_id: str) -> str:
    return _BAD_ID_CHARS.sub("_", call_id) or "toolu_missing"


def _build_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, msg in enumerate(messages):
        blocks = [b for part in msg.parts if (b := _block(part, f"messages[{index}]")) is not None]
        if msg.role == "user":
            # Anthropic wants the tool results first in the turn that answers a tool use.
            blocks.sort(key=lambda b: b["type"] != "tool_result")
        if not blocks:
            continue
        if out and out[-1]["role"] == msg.role:
            previous = out[-1]["content"]
            if msg.role == "user" and any(b["type"] == "tool_result" for b in blocks):
                results = [b for b in blocks if b["type"] == "tool_result"]
                rest = [b for b in blocks if b["type"] != "tool_result"]
                out[-1]["content"] = results + previous + rest
            else:
                previous.extend(blocks)
        else:
            out.append({"role": msg.role, "content": blocks})
    return out


def _block(part: Part, where: str) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        return _image(part)
    if isinstance(part, ToolCallPart):
        arguments = load_arguments(part.arguments, f"{where}.tool_calls[{part.id}].function.arguments")
        return {"type": "tool_use", "id": _tool_id(part.id), "name": part.name, "input": arguments}
    if isinstance(part, ToolResultPart):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(part.tool_call_id)}
        content = [
            _image(p) if isinstance(p, ImagePart) else {"type": "text", "text": p.text} for p in part.content
        ]
        content = [b for b in content if b["type"] != "text" or b["text"]]
        if content:
            only_text = len(content) == 1 and content[0]["type"] == "text"
            block["content"] = content[0]["text"] if only_text else content
        if part.is_error:
            block["is_error"] = True
        return block
    if part.redacted_data is not None:
        return {"type": "redacted_thinking", "data": part.redacted_data}
    if part.signature:
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    return None  # unsigned reasoning (DeepSeek, Qwen): Anthropic would reject it


def _image(image: ImagePart) -> dict[str, Any]:
    if image.data is not None:
        source = {"type": "base64", "media_type": image.media_type or "image/png", "data": image.data}
    else:
        source = {"type": "url", "url": image.url or ""}
    return {"type": "image", "source": source}
