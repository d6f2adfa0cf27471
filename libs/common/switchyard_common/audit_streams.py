"""Reassemble a streamed answer (the SSE text the caller received) into the one JSON
document a non-streamed call would have returned, for the audit log.

Only the caller-facing protocols occur here: OpenAI chat completion chunks and Anthropic
message events. A stream cut short (truncated capture, client gone) reassembles as far
as it got. Pure functions; runs in usage-ingest, never on the data plane.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["reassemble_stream", "sse_data_events"]


def sse_data_events(text: str) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of each complete SSE event whose data is JSON."""
    events: list[tuple[str | None, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name: str | None = None
        data_lines: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:].lstrip())
        if not data_lines:
            continue
        data = "\n".join(data_lines)
        if data == "[DONE]":
            continue
        try:
            events.append((name, orjson.loads(data)))
        except orjson.JSONDecodeError:
            continue  # a chunk cut by truncation
    return events


def _openai(events: list[tuple[str | None, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {"object": "chat.completion", "choices": []}
    choices: dict[int, dict[str, Any]] = {}
    for _name, chunk in events:
        if not isinstance(chunk, dict):
            continue
        for field in ("id", "created", "model", "system_fingerprint"):
            if field in chunk and field not in result:
                result[field] = chunk[field]
        if chunk.get("usage"):
            result["usage"] = chunk["usage"]
        if "error" in chunk:
            result["error"] = chunk["error"]
        for delta_choice in chunk.get("choices") or []:
            index = int(delta_choice.get("index", 0))
            choice = choices.setdefault(
                index,
                {"index": index, "message": {"role": "assistant", "content": None}, "finish_reason": None},
            )
            message = choice["message"]
            delta = delta_choice.get("delta") or {}
            if delta.get("role"):
                message["role"] = delta["role"]
            for text_field in ("content", "reasoning_content", "refusal"):
                if delta.get(text_field):
                    message[text_field] = (message.get(text_field) or "") + delta[text_field]
            for call in delta.get("tool_calls") or []:
                calls = message.setdefault("tool_calls", [])
                position = int(call.get("index", len(calls)))
                while len(calls) <= position:
                    calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                target = calls[position]
                if call.get("id"):
                    target["id"] = call["id"]
                function = call.get("function") or {}
                if function.get("name"):
                    target["function"]["name"] += function["name"]
                if function.get("arguments"):
                    target["function"]["arguments"] += function["arguments"]
            if delta_choice.get("finish_reason"):
                choice["finish_reason"] = delta_choice["finish_reason"]
    result["choices"] = [choices[i] for i in sorted(choices)]
    return result


def _anthropic(events: list[tuple[str | None, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "message", "role": "assistant", "content": []}
    blocks: dict[int, dict[str, Any]] = {}
    partial_json: dict[int, str] = {}
    for name, data in events:
        if not isinstance(data, dict):
            continue
        kind = data.get("type") or name
        if kind == "message_start":
            start = dict(data.get("message") or {})
            start.pop("content", None)
            message.update(start)
        elif kind == "content_block_start":
            block = dict(data.get("content_block") or {})
            blocks[int(data.get("index", len(blocks)))] = block
        elif kind == "content_block_delta":
            index = int(data.get("index", 0))
            block = blocks.setdefault(index, {"type": "text", "text": ""})
            delta = data.get("delta") or {}
            delta_type = delta.get("type")
            if delta_type == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif delta_type == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif delta_type == "signature_delta":
                block["signature"] = block.get("signature", "") + delta.get("signature", "")
            elif delta_type == "input_json_delta":
                partial_json[index] = partial_json.get(index, "") + delta.get("partial_json", "")
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            for field in ("stop_reason", "stop_sequence"):
                if field in delta:
                    message[field] = delta[field]
            if data.get("usage"):
                message["usage"] = {**(message.get("usage") or {}), **data["usage"]}
        elif kind == "error":
            message["error"] = data.get("error")
    for index, text in partial_json.items():
        try:
            blocks[index]["input"] = orjson.loads(text) if text else {}
        except (orjson.JSONDecodeError, KeyError):
            blocks.setdefault(index, {"type": "tool_use"})["input_partial"] = text
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def reassemble_stream(text: str) -> str | None:
    """The reassembled answer as JSON text, or None when `text` holds no recognisable
    stream (then the raw text is what should be kept)."""
    events = sse_data_events(text)
    if not events:
        return None
    first_name, first = events[0]
    is_anthropic = first_name is not None or (
        isinstance(first, dict)
        and str(first.get("type", "")).startswith(("message", "content_block", "ping"))
    )
    document = _anthropic(events) if is_anthropic else _openai(events)
    return orjson.dumps(document).decode()
