"""A Gemini answer relayed to an Anthropic / OpenAI caller must come back to Gemini
intact on the next turn: thought signatures on the parts they signed, function names
for the results, parallel results in one Content, no invented ids sent upstream."""

from __future__ import annotations

import json
from typing import Any

from switchyard_dataplane.protocols.gemini_request import SKIP_SIGNATURE_VALIDATION
from switchyard_dataplane.protocols.translate import StreamTranslator, translate_request, translate_response

from .gemini_helpers import load, raw


def _anthropic_blocks(sse: bytes) -> list[dict[str, Any]]:
    """Content blocks assembled from an Anthropic event stream, as the SDK would."""
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    for line in sse.decode().splitlines():
        if not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        if event["type"] == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
    for index, text in partial.items():
        blocks[index]["input"] = json.loads(text)
    return [blocks[i] for i in sorted(blocks)]


EXPECTED_MODEL_TURN = {
    "role": "model",
    "parts": [
        {"text": "Let me check both cities."},
        {
            "functionCall": {"name": "get_weather", "args": {"location": "Boston, MA"}},
            "thoughtSignature": "CiwBVKhc7nN0cmVhbV9jYWxsX3NpZ25hdHVyZQ==",
        },
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris, FR", "unit": "celsius"}}},
    ],
}
EXPECTED_RESULTS_TURN = {
    "role": "user",
    "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"output": "rain"}}},
        {"functionResponse": {"name": "get_weather", "response": {"output": "sun"}}},
    ],
}


def test_anthropic_caller_next_turn_returns_gemini_signatures() -> None:
    relay = StreamTranslator("gemini", "anthropic", "my-gemini", True)
    blocks = _anthropic_blocks(relay.feed(raw("stream_tool_calls.sse")) + relay.finish())
    tool_ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
    assert len(set(tool_ids)) == 2
    next_turn = {
        "model": "my-gemini",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "Weather in Boston and Paris?"},
            {"role": "assistant", "content": blocks},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_ids[0], "content": "rain"},
                    {"type": "tool_result", "tool_use_id": tool_ids[1], "content": "sun"},
                ],
            },
        ],
    }
    body = translate_request("anthropic", "gemini", next_turn, "gemini-2.5-pro")
    assert body["contents"][1:] == [EXPECTED_MODEL_TURN, EXPECTED_RESULTS_TURN]


def test_openai_caller_next_turn_resolves_names_and_groups_results() -> None:
    answer = translate_response("gemini", "openai", load("response_thinking_tools.json"), "my-gemini")
    message = answer["choices"][0]["message"]
    calls = message["tool_calls"]
    next_turn = {
        "model": "my-gemini",
        "messages": [
            {"role": "user", "content": "Weather in Boston and Paris?"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rain"},
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "sun"},
        ],
    }
    body = translate_request("openai", "gemini", next_turn, "gemini-2.5-flash")
    model_turn, results_turn = body["contents"][1:]
    assert [p["functionCall"] for p in model_turn["parts"] if "functionCall" in p] == [
        {"name": "get_weather", "args": {"location": "Boston, MA"}},
        {"name": "get_weather", "args": {"location": "Paris, FR", "unit": "celsius"}},
    ]
    assert results_turn == EXPECTED_RESULTS_TURN


def test_gemini_3_gets_a_signature_placeholder_where_the_caller_could_not_keep_one() -> None:
    history = {
        "model": "my-gemini",
        "messages": [
            {"role": "user", "content": "Weather in Boston and Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "w", "arguments": '{"c":"B"}'}},
                    {"id": "call_b", "type": "function", "function": {"name": "w", "arguments": '{"c":"P"}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "rain"},
            {"role": "tool", "tool_call_id": "call_b", "content": "sun"},
        ],
    }
    newer = translate_request("openai", "gemini", history, "gemini-3-pro-preview")["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in newer] == [SKIP_SIGNATURE_VALIDATION, None]
    older = translate_request("openai", "gemini", history, "gemini-2.5-flash")["contents"][1]["parts"]
    assert all("thoughtSignature" not in p for p in older)
