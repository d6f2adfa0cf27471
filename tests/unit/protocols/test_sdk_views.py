"""Translated answers and streams as the official SDKs see them."""

from __future__ import annotations

import json

import orjson
import pytest
from switchyard_dataplane.protocols.translate import translate_response

from .golden import CALLER_MODEL, FIXTURES, load_json, translate_stream
from .sdk import anthropic_message, anthropic_stream_message, openai_completion, openai_stream_completion


def _fixture(src: str, name: str) -> bytes:
    return (FIXTURES / src / name).read_bytes()


def test_anthropic_sdk_reads_openai_tool_call_stream() -> None:
    message = anthropic_stream_message(
        translate_stream("openai", _fixture("openai", "stream_tool_calls.sse"))
    )
    assert message.stop_reason == "tool_use"
    calls = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert calls == [
        ("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", {"location": "Paris, France"}),
        ("call_2nd", "get_weather", {"location": "Bogotá, Colombia"}),
    ]
    assert message.usage.input_tokens == 30 and message.usage.cache_read_input_tokens == 32
    assert message.usage.output_tokens == 40


def test_anthropic_sdk_reads_deepseek_reasoning_stream() -> None:
    message = anthropic_stream_message(
        translate_stream("openai", _fixture("openai", "stream_deepseek_reasoning.sse"))
    )
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Okay, 9.8 is bigger."
    assert thinking.signature == ""
    assert text.type == "text" and text.text == "9.8 is greater."


def test_openai_sdk_reads_anthropic_tool_use_stream() -> None:
    completion, chunks = openai_stream_completion(
        translate_stream("anthropic", _fixture("anthropic", "stream_tool_use.sse"))
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Okay, let's check the weather for San Francisco, CA:"
    call = (choice.message.tool_calls or [])[0]
    assert call.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 472


def test_openai_sdk_reads_anthropic_thinking_stream() -> None:
    completion, chunks = openai_stream_completion(
        translate_stream("anthropic", _fixture("anthropic", "stream_thinking.sse"))
    )
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning.endswith("10,800 + 1,350 + 81 = 12,231")
    assert completion.choices[0].message.content == "27 * 453 = 12,231"


def test_openai_sdk_raises_on_translated_stream_error() -> None:
    import openai

    with pytest.raises(openai.APIError, match="Overloaded"):
        openai_stream_completion(translate_stream("anthropic", _fixture("anthropic", "stream_error.sse")))


def test_anthropic_sdk_raises_on_translated_stream_error() -> None:
    import anthropic

    raw = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    raw += b'data: {"error":{"message":"boom","type":"server_error","code":null}}\n\n'
    with pytest.raises(anthropic.APIStatusError, match="boom"):
        anthropic_stream_message(translate_stream("openai", raw))


@pytest.mark.parametrize(
    "name", ["response_text.json", "response_tool_calls.json", "response_deepseek_reasoning.json"]
)
def test_anthropic_sdk_reads_translated_openai_responses(name: str) -> None:
    body = translate_response("openai", "anthropic", load_json(FIXTURES / "openai" / name), CALLER_MODEL)
    message = anthropic_message(orjson.dumps(body))
    assert message.model == CALLER_MODEL
    assert message.stop_reason in ("end_turn", "tool_use", "max_tokens")


@pytest.mark.parametrize("name", ["response_text.json", "response_tool_use.json", "response_thinking.json"])
def test_openai_sdk_reads_translated_anthropic_responses(name: str) -> None:
    body = translate_response("anthropic", "openai", load_json(FIXTURES / "anthropic" / name), CALLER_MODEL)
    completion = openai_completion(orjson.dumps(body))
    assert completion.model == CALLER_MODEL
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
