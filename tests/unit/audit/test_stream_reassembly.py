"""Streamed answers are stored reassembled into the non-streamed document."""

from __future__ import annotations

import orjson
from switchyard_common.audit_streams import reassemble_stream


def _sse(*payloads: object, named: bool = False) -> str:
    out = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        if named and isinstance(payload, dict):
            out.append(f"event: {payload['type']}\ndata: {data}\n\n")
        else:
            out.append(f"data: {data}\n\n")
    return "".join(out)


def test_openai_chunks_with_text_reasoning_and_tool_calls() -> None:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    text = _sse(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {**base, "choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get", "arguments": '{"a"'},
                            }
                        ]
                    },
                }
            ],
        },
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}
            ],
        },
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}},
        "[DONE]",
    )
    doc = orjson.loads(reassemble_stream(text) or "null")
    assert doc["object"] == "chat.completion" and doc["id"] == "c1" and doc["model"] == "m"
    message = doc["choices"][0]["message"]
    assert message["content"] == "Hello" and message["reasoning_content"] == "think"
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"a": 1}'}}
    ]
    assert doc["choices"][0]["finish_reason"] == "tool_calls"
    assert doc["usage"]["total_tokens"] == 8


def test_anthropic_events_with_thinking_text_and_tool_use() -> None:
    text = _sse(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [],
                "usage": {"input_tokens": 7, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi "}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "there"}},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "tu", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"x": '},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "2}"},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
        named=True,
    )
    doc = orjson.loads(reassemble_stream(text) or "null")
    assert doc["id"] == "msg_1" and doc["stop_reason"] == "tool_use"
    assert doc["usage"] == {"input_tokens": 7, "output_tokens": 9}
    assert doc["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Hi there"},
        {"type": "tool_use", "id": "tu", "name": "f", "input": {"x": 2}},
    ]


def test_a_stream_cut_short_reassembles_as_far_as_it_got() -> None:
    base = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    text = _sse({**base, "choices": [{"index": 0, "delta": {"content": "par"}}]}) + 'data: {"id": "c1", "cho'
    doc = orjson.loads(reassemble_stream(text) or "null")
    assert doc["choices"][0]["message"]["content"] == "par"
    assert doc["choices"][0]["finish_reason"] is None


def test_text_that_is_not_a_stream_is_not_reassembled() -> None:
    assert reassemble_stream('{"plain": "json"}') is None
