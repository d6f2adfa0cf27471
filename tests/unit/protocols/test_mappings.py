"""Errors, usage and reasoning settings mapped between the protocols."""

from __future__ import annotations

import json

import pytest
from switchyard_dataplane.protocols.ir import TokenUsage
from switchyard_dataplane.protocols.reasoning import budget_to_effort, effort_to_budget
from switchyard_dataplane.protocols.translate import (
    translate_error,
    translate_request,
    translate_response,
)

ANTHROPIC_TYPES = [
    (400, "invalid_request_error", 400),
    (401, "authentication_error", 401),
    (403, "permission_error", 403),
    (404, "not_found_error", 404),
    (413, "request_too_large", 413),
    (429, "rate_limit_error", 429),
    (500, "api_error", 500),
    (529, "overloaded_error", 503),
    (504, "timeout_error", 504),
]


@pytest.mark.parametrize(("status", "kind", "openai_status"), ANTHROPIC_TYPES)
def test_anthropic_errors_to_openai_and_back(status: int, kind: str, openai_status: int) -> None:
    body = f'{{"type":"error","error":{{"type":"{kind}","message":"m"}}}}'.encode()
    out_status, out = translate_error("anthropic", "openai", status, body)
    assert out_status == openai_status and out["error"]["message"] == "m"
    back_status, back = translate_error("openai", "anthropic", out_status, json.dumps(out).encode())
    assert back == {"type": "error", "error": {"type": kind, "message": "m"}}
    assert back_status == status


def test_openai_error_kind_comes_from_status_and_non_json_bodies_survive() -> None:
    status, body = translate_error(
        "openai",
        "anthropic",
        404,
        b'{"error":{"message":"no model","type":"invalid_request_error","code":"model_not_found"}}',
    )
    assert (status, body["error"]["type"]) == (404, "not_found_error")
    status, body = translate_error("openai", "anthropic", 502, b"<html>Bad Gateway</html>")
    assert (status, body["error"]) == (502, {"type": "api_error", "message": "<html>Bad Gateway</html>"})
    status, body = translate_error("openai", "anthropic", 503, b'{"error": "engine overloaded"}')
    assert (status, body["error"]["type"]) == (529, "overloaded_error")


def test_effort_budget_helpers() -> None:
    assert [effort_to_budget(e) for e in ("minimal", "low", "medium", "high", None)] == [
        1024,
        1024,
        4096,
        16384,
        4096,
    ]
    assert [budget_to_effort(b) for b in (1024, 2047, 2048, 8191, 8192, 32000, None)] == [
        "low", "low", "medium", "medium", "high", "high", "medium",
    ]  # fmt: skip


def test_cached_tokens_convert_both_ways() -> None:
    openai = {
        "id": "c",
        "model": "m",
        "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 60},
        },
    }
    anthropic = translate_response("openai", "anthropic", openai, "m")
    assert anthropic["usage"] == {
        "input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
        "output_tokens": 5,
    }
    back = translate_response("anthropic", "openai", anthropic, "m")
    assert (
        back["usage"]["prompt_tokens"] == 100
        and back["usage"]["prompt_tokens_details"]["cached_tokens"] == 60
    )
    assert TokenUsage(100, 5, 60).input_tokens == 100


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_finish_and_stop_reasons(finish: str, stop: str) -> None:
    openai = {"id": "c", "model": "m", "choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    anthropic = translate_response("openai", "anthropic", openai, "m")
    assert anthropic["stop_reason"] == stop
    assert translate_response("anthropic", "openai", anthropic, "m")["choices"][0]["finish_reason"] == finish


def test_stop_sequence_becomes_openai_stop() -> None:
    body = {
        "id": "m",
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
    }
    assert translate_response("anthropic", "openai", body, "m")["choices"][0]["finish_reason"] == "stop"


def test_tool_choice_and_parallel_mapping() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools}
    cases = [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ]
    for choice, parallel, want in cases:
        payload = {**base, **({"tool_choice": choice} if choice else {})}
        if parallel is not None:
            payload["parallel_tool_calls"] = parallel
        anthropic = translate_request("openai", "anthropic", payload, "claude")
        assert anthropic["tool_choice"] == want
        back = translate_request("anthropic", "openai", {**anthropic, "model": "x"}, "gpt")
        assert back["tool_choice"] == (choice or "auto")
        assert back.get("parallel_tool_calls") == parallel


def test_thinking_and_max_tokens_defaults() -> None:
    plain = translate_request(
        "openai", "anthropic", {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "c"
    )
    assert plain["max_tokens"] == 4096 and "thinking" not in plain
    effort = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "low",
        "temperature": 0.3,
    }
    thinking = translate_request("openai", "anthropic", effort, "c")
    assert thinking["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert thinking["max_tokens"] == 4096 + 1024 and "temperature" not in thinking
    tight = translate_request(
        "openai", "anthropic", {**effort, "reasoning_effort": "high", "max_completion_tokens": 6000}, "c"
    )
    assert tight["thinking"]["budget_tokens"] == 3000 and tight["max_tokens"] == 6000
    forced = translate_request(
        "openai",
        "anthropic",
        {**effort, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"},
        "c",
    )
    assert "thinking" not in forced
    assert (
        translate_request("openai", "openai", {**effort, "max_completion_tokens": 50}, "o3-mini")[
            "max_completion_tokens"
        ]
        == 50
    )
    assert (
        translate_request("openai", "openai", {**effort, "max_completion_tokens": 50}, "deepseek-chat")[
            "max_tokens"
        ]
        == 50
    )


def test_signed_thinking_round_trips_and_unsigned_is_dropped() -> None:
    history = {
        "model": "m",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "sig"},
                    {"type": "thinking", "thinking": "unsigned", "signature": ""},
                    {"type": "tool_use", "id": "functions.get:0", "name": "get", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "functions.get:0", "content": "r"}],
            },
        ],
    }
    out = translate_request("anthropic", "anthropic", history, "c")
    assistant = out["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "t", "signature": "sig"}
    assert [b["type"] for b in assistant] == ["thinking", "tool_use"]
    assert assistant[1]["id"] == "functions_get_0" == out["messages"][2]["content"][0]["tool_use_id"]
    openai = translate_request("anthropic", "openai", history, "deepseek")
    assert openai["messages"][1]["reasoning_content"] == "tunsigned"  # replayed with its tool call
