"""The official Anthropic SDK against the gateway (`base_url` = the gateway, any public
model name), for every upstream protocol: plain text, system prompt, multi-turn, a tool
round trip, images, extended thinking — each without streaming, by iterating the raw
`stream=True` events, and through `client.messages.stream()` / `get_final_message()`.
Assertions are on the SDK's typed objects. Also count_tokens, models, usage rows,
upstream errors and malformed input in Anthropic's error shape."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message

from tests.support.sdk_stack import (
    NO_USAGE,
    RATE_LIMITED,
    UPSTREAMS,
    clear_received,
    last_received,
    sdk_stack,
    wait_for_row_since,
)
from tests.support.stack import APP_KEY, SplitStack

pytestmark = pytest.mark.integration

MODELS = list(UPSTREAMS)
MODES = ["plain", "events", "helper"]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[SplitStack]:
    with sdk_stack(tmp_path_factory.mktemp("sdk-anthropic")) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: SplitStack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.dp_url, api_key=APP_KEY, max_retries=0, timeout=20)


@dataclass
class Answer:
    text: str = ""
    thinking: str = ""
    signatures: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # id, name, input
    stop: str | None = None
    usage: tuple[int, int] | None = None


def _from_message(message: Message) -> Answer:
    # An Anthropic-compatible upstream without usage is passed through as it is.
    usage = (message.usage.input_tokens, message.usage.output_tokens) if message.usage else None
    answer = Answer(stop=message.stop_reason, usage=usage)
    for block in message.content:
        if block.type == "text":
            answer.text += block.text
        elif block.type == "thinking":
            answer.thinking += block.thinking
            answer.signatures.append(block.signature)
        elif block.type == "tool_use":
            answer.tool_calls.append((block.id, block.name, dict(block.input)))  # type: ignore[call-overload]
    return answer


def ask(client: anthropic.Anthropic, mode: str, **kwargs: Any) -> Answer:
    kwargs.setdefault("max_tokens", 2048)
    if mode == "plain":
        return _from_message(client.messages.create(**kwargs))
    if mode == "helper":
        with client.messages.stream(**kwargs) as stream:
            streamed_text = "".join(stream.text_stream)
            answer = _from_message(stream.get_final_message())
        assert streamed_text == answer.text
        return answer
    answer = Answer()
    input_tokens = 0
    tool_json: dict[int, list[str]] = {}
    for event in client.messages.create(stream=True, **kwargs):
        if event.type == "message_start":
            input_tokens = event.message.usage.input_tokens if event.message.usage else 0
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            tool_json[event.index] = [event.content_block.id, event.content_block.name, ""]
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                answer.text += delta.text
            elif delta.type == "thinking_delta":
                answer.thinking += delta.thinking
            elif delta.type == "signature_delta":
                answer.signatures.append(delta.signature)
            elif delta.type == "input_json_delta":
                tool_json[event.index][2] += delta.partial_json
        elif event.type == "message_delta":
            answer.stop = event.delta.stop_reason
            # Translated streams learn the prompt size at the end, and say so here (as the
            # SDK's own accumulator reads it).
            if event.usage is not None:
                if event.usage.input_tokens is not None:
                    input_tokens = event.usage.input_tokens
                answer.usage = (input_tokens, event.usage.output_tokens)
    answer.tool_calls = [
        (i, n, json.loads(raw or "{}")) for i, n, raw in (tool_json[k] for k in sorted(tool_json))
    ]
    return answer


def user(content: Any) -> Any:  # a MessageParam (TypedDict) the SDK accepts
    return {"role": "user", "content": content}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_plain_text(client: anthropic.Anthropic, model: str, mode: str) -> None:
    answer = ask(client, mode, model=model, messages=[user("hello there")])
    assert answer.text == "echo: hello there"
    assert answer.stop == "end_turn"
    assert not answer.tool_calls
    assert answer.usage is not None and answer.usage[0] > 0 and answer.usage[1] > 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_system_prompt(client: anthropic.Anthropic, model: str, mode: str) -> None:
    answer = ask(client, mode, model=model, system="answer briefly", messages=[user("hello there")])
    assert answer.text == "echo: hello there [system: answer briefly]"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_multi_turn(client: anthropic.Anthropic, model: str, mode: str) -> None:
    messages = [user("hi"), {"role": "assistant", "content": "hello! how can I help?"}, user("how are you")]
    answer = ask(client, mode, model=model, messages=messages)
    assert answer.text == "echo: how are you [turns: 2]"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_tool_use_and_result_round_trip(client: anthropic.Anthropic, model: str, mode: str) -> None:
    question = user("what's the weather in Paris?")
    first = ask(client, mode, model=model, messages=[question], tools=TOOLS)
    assert first.stop == "tool_use"
    assert [(name, args) for _, name, args in first.tool_calls] == [("get_weather", {"city": "Paris"})]
    tool_id = first.tool_calls[0][0]
    assert tool_id
    assistant: list[dict[str, Any]] = [{"type": "text", "text": first.text}] if first.text else []
    assistant.append({"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"city": "Paris"}})
    history = [
        question,
        {"role": "assistant", "content": assistant},
        user([{"type": "tool_result", "tool_use_id": tool_id, "content": "sunny, 21C"}]),
    ]
    second = ask(client, mode, model=model, messages=history, tools=TOOLS)
    assert second.stop == "end_turn"
    assert "tool said:" in second.text and "sunny, 21C" in second.text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", ["url", "base64"])
@pytest.mark.parametrize("model", MODELS)
def test_image_input(
    client: anthropic.Anthropic, stack: SplitStack, model: str, source: str, mode: str
) -> None:
    # A URL only the gateway's network reaches: Gemini gets the image inline.
    image_source = (
        {"type": "url", "url": f"http://127.0.0.1:{stack.mock_port}/_images/pixel.png"}
        if source == "url"
        else {"type": "base64", "media_type": "image/png", "data": PNG_B64}
    )
    content = [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image", "source": image_source},
    ]
    answer = ask(client, mode, model=model, messages=[user(content)])
    assert answer.text == "echo: what is in this picture? [image x1]"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_extended_thinking(client: anthropic.Anthropic, model: str, mode: str) -> None:
    answer = ask(
        client,
        mode,
        model=model,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[user("think about it")],
    )
    assert answer.text == "echo: think about it"
    assert answer.thinking == "thinking about: think about it"
    if model == "claude-model":  # Anthropic's own signature passes through untouched
        assert answer.signatures and answer.signatures[-1].startswith("sig-")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_thinking_kept_across_a_tool_round_trip(client: anthropic.Anthropic, model: str, mode: str) -> None:
    """Claude Code's loop: thinking + tool_use, then the same blocks sent back with the
    tool result (an Anthropic upstream rejects a thinking block whose signature changed)."""
    thinking = {"type": "enabled", "budget_tokens": 1024}
    question = user("what's the weather in Paris?")
    first = ask(
        client, mode, model=model, max_tokens=4096, thinking=thinking, messages=[question], tools=TOOLS
    )
    assert first.thinking == "thinking about: what's the weather in Paris?"
    assert first.stop == "tool_use" and first.tool_calls[0][1:] == ("get_weather", {"city": "Paris"})
    assistant: list[dict[str, Any]] = [
        {
            "type": "thinking",
            "thinking": first.thinking,
            "signature": first.signatures[-1] if first.signatures else "",
        }
    ]
    assistant.append(
        {"type": "tool_use", "id": first.tool_calls[0][0], "name": "get_weather", "input": {"city": "Paris"}}
    )
    history = [
        question,
        {"role": "assistant", "content": assistant},
        user([{"type": "tool_result", "tool_use_id": first.tool_calls[0][0], "content": "sunny, 21C"}]),
    ]
    second = ask(client, mode, model=model, max_tokens=4096, thinking=thinking, messages=history, tools=TOOLS)
    assert "sunny, 21C" in second.text and second.stop == "end_turn"


@pytest.mark.parametrize("model", MODELS)
def test_count_tokens(client: anthropic.Anthropic, model: str) -> None:
    counted = client.messages.count_tokens(
        model=model, system="answer briefly", messages=[user("how many tokens is this?")], tools=TOOLS
    )
    assert counted.input_tokens > 0


def test_models_listed_in_anthropic_shape(client: anthropic.Anthropic) -> None:
    ids = {model.id for model in client.models.list()}
    assert set(UPSTREAMS) <= ids


@pytest.mark.parametrize("model", ["oa-model", "claude-model", "gem-model"])
def test_routes_answer_under_the_anthropic_prefix(stack: SplitStack, model: str) -> None:
    prefixed = anthropic.Anthropic(
        base_url=f"{stack.dp_url}/anthropic", api_key=APP_KEY, max_retries=0, timeout=20
    )
    assert model in {listed.id for listed in prefixed.models.list()}
    answer = ask(prefixed, "helper", model=model, messages=[user("hello there")])
    assert answer.text == "echo: hello there"


def test_anthropic_headers_reach_an_anthropic_upstream(
    client: anthropic.Anthropic, stack: SplitStack
) -> None:
    clear_received(stack)
    client.messages.create(
        model="claude-model",
        max_tokens=64,
        messages=[user("hi")],
        extra_headers={"anthropic-beta": "mock-beta-2025-01-01"},
    )
    request = last_received(stack)
    assert request["path"] == "/v1/messages"
    assert request["headers"].get("anthropic-version")
    assert request["headers"].get("anthropic-beta") == "mock-beta-2025-01-01"
    assert request["body"]["model"] == "claude-mock"
    assert APP_KEY not in json.dumps(request["headers"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_usage_rows_carry_the_upstreams_tokens(
    client: anthropic.Anthropic, stack: SplitStack, model: str, mode: str
) -> None:
    since = time.time()
    answer = ask(client, mode, model=model, messages=[user("usage check please")])
    row = wait_for_row_since(stack, model, since)
    assert row["status"] == 200 and row["tokens_estimated"] is False and row["stream"] is (mode != "plain")
    assert (row["input_tokens"], row["output_tokens"]) == answer.usage


@pytest.mark.parametrize("mode", ["plain", "events"])
@pytest.mark.parametrize("model", list(NO_USAGE.values()))
def test_tokens_are_counted_locally_when_the_upstream_gives_none(
    client: anthropic.Anthropic, stack: SplitStack, model: str, mode: str
) -> None:
    since = time.time()
    answer = ask(client, mode, model=model, messages=[user("count these words")])
    assert answer.text == "echo: count these words"
    row = wait_for_row_since(stack, model, since)
    assert row["tokens_estimated"] is True and row["stream"] is (mode == "events")
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0


@pytest.mark.parametrize("model", list(RATE_LIMITED.values()))
def test_upstream_errors_reach_the_sdk_as_its_own_error(client: anthropic.Anthropic, model: str) -> None:
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model=model, max_tokens=64, messages=[user("hi")])
    assert raised.value.status_code == 429
    body = raised.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == "rate_limit_error"


MALFORMED: dict[str, dict[str, Any]] = {
    "messages-not-a-list": {"max_tokens": 64, "messages": "hello"},
    "missing-messages": {"max_tokens": 64},
    "empty-messages": {"max_tokens": 64, "messages": []},
    "missing-max-tokens": {"messages": [user("hi")]},
    "max-tokens-wrong-type": {"max_tokens": "lots", "messages": [user("hi")]},
    "unknown-role": {"max_tokens": 64, "messages": [{"role": "system", "content": "hi"}]},
    "content-wrong-type": {"max_tokens": 64, "messages": [user(42)]},
    "block-wrong-type": {"max_tokens": 64, "messages": [user([{"type": "text", "text": 5}])]},
    "unknown-block": {"max_tokens": 64, "messages": [user([{"type": "hologram"}])]},
    "temperature-wrong-type": {"max_tokens": 64, "messages": [user("hi")], "temperature": "hot"},
    "tool-without-schema": {"max_tokens": 64, "messages": [user("hi")], "tools": [{"name": "f"}]},
    "tool-schema-not-object": {
        "max_tokens": 64,
        "messages": [user("hi")],
        "tools": [{"name": "f", "input_schema": "nope"}],
    },
    "thinking-budget-wrong-type": {
        "max_tokens": 4096,
        "messages": [user("hi")],
        "thinking": {"type": "enabled", "budget_tokens": "big"},
    },
}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("model", MODELS)
def test_malformed_requests_are_400_in_anthropic_shape(
    client: anthropic.Anthropic, model: str, case: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.post("/v1/messages", body={"model": model, **MALFORMED[case]}, cast_to=Message)
    body = raised.value.body
    assert isinstance(body, dict) and body.get("type") == "error"
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]


@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
@pytest.mark.parametrize("model", MODELS)
def test_truncated_json_is_400_in_anthropic_shape(stack: SplitStack, model: str, auth: str) -> None:
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    headers.update({"x-api-key": APP_KEY} if auth == "x-api-key" else {"authorization": f"Bearer {APP_KEY}"})
    response = httpx.post(
        f"{stack.dp_url}/v1/messages",
        content=b'{"model": "' + model.encode() + b'", "max_tokens": 5, "messages": [{"role": "us',
        headers=headers,
        timeout=20,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
