"""The official OpenAI SDK against the gateway, for every upstream protocol (OpenAI,
DeepSeek-like, Azure, Anthropic, Gemini): plain text, system prompt, multi-turn, a tool
round trip, images, reasoning — each without streaming, by iterating `stream=True`
chunks, and through the SDK's `chat.completions.stream()` helper. Assertions are on the
SDK's typed objects. Also embeddings, usage rows, upstream errors and malformed input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from tests.support.sdk_stack import (
    NO_USAGE,
    RATE_LIMITED,
    UPSTREAM_KEYS,
    UPSTREAMS,
    clear_received,
    last_received,
    sdk_stack,
    wait_for_row_since,
)
from tests.support.stack import APP_KEY, SplitStack

pytestmark = pytest.mark.integration

MODELS = list(UPSTREAMS)
MODES = ["plain", "chunks", "helper"]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[SplitStack]:
    with sdk_stack(tmp_path_factory.mktemp("sdk-openai")) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: SplitStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.dp_url}/v1", api_key=APP_KEY, max_retries=0, timeout=20)


@dataclass
class Answer:
    """What an app reads from the SDK, the same whichever way it was obtained."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # id, name, args
    finish: str | None = None
    usage: tuple[int, int] | None = None


def _from_completion(completion: ChatCompletion) -> Answer:
    choice = completion.choices[0]
    message = choice.message
    return Answer(
        text=message.content or "",
        reasoning=str(getattr(message, "reasoning_content", None) or ""),
        tool_calls=[
            (call.id, call.function.name, json.loads(call.function.arguments))
            for call in message.tool_calls or []
            if call.type == "function"
        ],
        finish=choice.finish_reason,
        usage=(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        if completion.usage
        else None,
    )


def ask(client: openai.OpenAI, mode: str, **kwargs: Any) -> Answer:
    if mode == "plain":
        return _from_completion(client.chat.completions.create(**kwargs))
    if mode == "helper":
        # The helper mode also covers include_usage: the final completion then has usage.
        with client.chat.completions.stream(stream_options={"include_usage": True}, **kwargs) as stream:
            for _event in stream:
                pass
            return _from_completion(stream.get_final_completion())
    answer = Answer()
    calls: dict[int, list[str]] = {}
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        if chunk.usage is not None:
            answer.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        answer.text += delta.content or ""
        answer.reasoning += str(getattr(delta, "reasoning_content", None) or "")
        for call in delta.tool_calls or []:
            slot = calls.setdefault(call.index, ["", "", ""])
            slot[0] = call.id or slot[0]
            if call.function is not None:
                slot[1] += call.function.name or ""
                slot[2] += call.function.arguments or ""
        answer.finish = chunk.choices[0].finish_reason or answer.finish
    answer.tool_calls = [(i, n, json.loads(a)) for i, n, a in (calls[k] for k in sorted(calls))]
    return answer


def user(text: str) -> Any:  # a message param (TypedDict) the SDK accepts
    return {"role": "user", "content": text}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_plain_text(client: openai.OpenAI, model: str, mode: str) -> None:
    answer = ask(client, mode, model=model, messages=[user("hello there")])
    assert answer.text == "echo: hello there"
    assert answer.finish == "stop"
    assert not answer.tool_calls
    if mode != "chunks":
        assert answer.usage is not None and answer.usage[0] > 0 and answer.usage[1] > 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_system_prompt(client: openai.OpenAI, model: str, mode: str) -> None:
    messages = [{"role": "system", "content": "answer briefly"}, user("hello there")]
    answer = ask(client, mode, model=model, messages=messages)
    assert answer.text == "echo: hello there [system: answer briefly]"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_multi_turn(client: openai.OpenAI, model: str, mode: str) -> None:
    messages = [user("hi"), {"role": "assistant", "content": "hello! how can I help?"}, user("how are you")]
    answer = ask(client, mode, model=model, messages=messages)
    assert answer.text == "echo: how are you [turns: 2]"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_tool_call_and_result_round_trip(client: openai.OpenAI, model: str, mode: str) -> None:
    question = user("what's the weather in Paris?")
    first = ask(client, mode, model=model, messages=[question], tools=TOOLS)
    assert first.finish == "tool_calls"
    assert [(name, args) for _, name, args in first.tool_calls] == [("get_weather", {"city": "Paris"})]
    call_id = first.tool_calls[0][0]
    assert call_id
    history = [
        question,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21C"},
    ]
    second = ask(client, mode, model=model, messages=history, tools=TOOLS)
    assert second.finish == "stop"
    assert "tool said:" in second.text and "sunny, 21C" in second.text
    assert not second.tool_calls


class GetWeather(BaseModel):
    """Current weather in a city"""

    city: str
    unit: Literal["C", "F"] | None = None


@pytest.mark.parametrize("model", MODELS)
def test_strict_pydantic_tool_schema(client: openai.OpenAI, model: str) -> None:
    """Agents SDKs send pydantic-generated strict schemas (additionalProperties, anyOf
    with null, ...); a Gemini upstream refuses keys outside its OpenAPI subset."""
    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")
    completion = client.chat.completions.parse(
        model=model, messages=[user("what's the weather in Paris?")], tools=[tool]
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.function.parsed_arguments == GetWeather(city="Paris")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", ["url", "base64"])
@pytest.mark.parametrize("model", MODELS)
def test_image_input(client: openai.OpenAI, stack: SplitStack, model: str, source: str, mode: str) -> None:
    # A URL only the gateway's network reaches: Gemini gets the image inline.
    pixel = f"http://127.0.0.1:{stack.mock_port}/_images/pixel.png"
    url = pixel if source == "url" else f"data:image/png;base64,{PNG_B64}"
    content = [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    answer = ask(client, mode, model=model, messages=[{"role": "user", "content": content}])
    assert answer.text == "echo: what is in this picture? [image x1]"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_reasoning(client: openai.OpenAI, model: str, mode: str) -> None:
    answer = ask(client, mode, model=model, messages=[user("think about it")], reasoning_effort="low")
    assert answer.text == "echo: think about it"
    # DeepSeek's field, which the gateway uses for every upstream's reasoning.
    assert answer.reasoning == "thinking about: think about it"


@pytest.mark.parametrize("model", MODELS)
def test_stream_usage_chunk_only_when_asked(client: openai.OpenAI, stack: SplitStack, model: str) -> None:
    messages = [user("count me")]
    with_usage = list(
        client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].usage is not None and with_usage[-1].usage.prompt_tokens > 0
    assert with_usage[-1].usage.completion_tokens > 0
    clear_received(stack)
    without = list(client.chat.completions.create(model=model, messages=messages, stream=True))
    assert all(chunk.choices and chunk.usage is None for chunk in without)
    if model in ("oa-model", "ds-model", "az-model"):
        # The gateway asked the OpenAI-compatible upstream for usage all the same.
        assert last_received(stack)["body"]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("model", ["oa-model", "claude-model", "gem-model"])
def test_routes_answer_under_the_openai_prefix(stack: SplitStack, model: str) -> None:
    prefixed = openai.OpenAI(base_url=f"{stack.dp_url}/openai/v1", api_key=APP_KEY, max_retries=0, timeout=20)
    assert model in {listed.id for listed in prefixed.models.list()}
    answer = ask(prefixed, "chunks", model=model, messages=[user("hello there")])
    assert answer.text == "echo: hello there"


@pytest.mark.parametrize("model", ["emb-model", "az-emb"])
def test_embeddings(client: openai.OpenAI, model: str) -> None:
    result = client.embeddings.create(model=model, input=["first text", "second"])
    assert [item.index for item in result.data] == [0, 1]
    assert all(len(item.embedding) == 8 for item in result.data)
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == 3


@pytest.mark.parametrize(
    ("model", "path", "auth_header", "auth_value"),
    [
        ("oa-model", "/v1/chat/completions", "authorization", f"Bearer {UPSTREAM_KEYS['oa']}"),
        (
            "ds-model",
            "/compatible-mode/v1/chat/completions",
            "authorization",
            f"Bearer {UPSTREAM_KEYS['ds']}",
        ),
        ("az-model", "/openai/deployments/my-deployment/chat/completions", "api-key", UPSTREAM_KEYS["az"]),
        ("claude-model", "/v1/messages", "x-api-key", UPSTREAM_KEYS["an"]),
        ("gem-model", "/v1beta/models/gemini-mock:generateContent", "x-goog-api-key", UPSTREAM_KEYS["ge"]),
        # auth_header: X-Api-Key on an OpenAI-format provider: the raw key, no Bearer.
        ("xk-model", "/v1/chat/completions", "x-api-key", UPSTREAM_KEYS["xk"]),
    ],
)
def test_upstream_gets_its_own_protocol_and_credentials(
    client: openai.OpenAI, stack: SplitStack, model: str, path: str, auth_header: str, auth_value: str
) -> None:
    clear_received(stack)
    client.chat.completions.create(model=model, messages=[user("hi")], max_tokens=64)
    request = last_received(stack)
    assert request["path"] == path
    assert request["headers"].get(auth_header) == auth_value
    assert APP_KEY not in json.dumps(request["headers"])  # the gateway key never leaks upstream
    if model == "xk-model":
        assert "authorization" not in request["headers"]
    if model == "az-model":
        assert request["query"] == {"api-version": "2025-01-01-preview"}
    if model == "claude-model":
        assert request["headers"].get("anthropic-version")
        assert request["body"]["max_tokens"] == 64 and request["body"]["model"] == "claude-mock"
    if model == "gem-model":
        assert request["body"]["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


@pytest.mark.parametrize("mode", ["plain", "helper"])
@pytest.mark.parametrize("model", MODELS)
def test_usage_rows_carry_the_upstreams_tokens(
    client: openai.OpenAI, stack: SplitStack, model: str, mode: str
) -> None:
    since = time.time()
    answer = ask(client, mode, model=model, messages=[user("usage check please")], reasoning_effort="low")
    assert answer.usage is not None
    row = wait_for_row_since(stack, model, since)
    assert row["status"] == 200 and row["tokens_estimated"] is False and row["stream"] is (mode == "helper")
    assert (row["input_tokens"], row["output_tokens"]) == answer.usage
    # "thinking about: usage check please"; Anthropic reports no separate reasoning figure.
    assert row["reasoning_tokens"] == (0 if model == "claude-model" else 5)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", list(NO_USAGE.values()))
def test_tokens_are_counted_locally_when_the_upstream_gives_none(
    client: openai.OpenAI, stack: SplitStack, model: str, stream: bool
) -> None:
    since = time.time()
    answer = ask(client, "chunks" if stream else "plain", model=model, messages=[user("count these words")])
    assert answer.text == "echo: count these words"
    row = wait_for_row_since(stack, model, since)
    assert row["tokens_estimated"] is True and row["stream"] is stream
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0


@pytest.mark.parametrize("model", list(RATE_LIMITED.values()))
def test_upstream_errors_reach_the_sdk_as_its_own_error(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=model, messages=[user("hi")])
    assert raised.value.status_code == 429
    assert isinstance(raised.value.body, dict) and raised.value.body.get("message")


MALFORMED: dict[str, dict[str, Any]] = {
    "messages-not-a-list": {"messages": "hello"},
    "missing-messages": {},
    "empty-messages": {"messages": []},
    "unknown-role": {"messages": [{"role": "wizard", "content": "hi"}]},
    "content-wrong-type": {"messages": [{"role": "user", "content": 42}]},
    "part-wrong-type": {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
    "temperature-wrong-type": {"messages": [user("hi")], "temperature": "hot"},
    "tool-without-name": {
        "messages": [user("hi")],
        "tools": [{"type": "function", "function": {"parameters": {}}}],
    },
    "tool-schema-not-object": {
        "messages": [user("hi")],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": "nope"}}],
    },
    "tools-not-a-list": {"messages": [user("hi")], "tools": {"name": "f"}},
    "tool-result-without-call": {"messages": [user("hi"), {"role": "tool", "content": "x"}]},
}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("model", MODELS)
def test_malformed_requests_are_400_in_openai_shape(client: openai.OpenAI, model: str, case: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post("/chat/completions", body={"model": model, **MALFORMED[case]}, cast_to=ChatCompletion)
    error = raised.value.body
    assert isinstance(error, dict) and error.get("message") and error.get("type")


@pytest.mark.parametrize("model", MODELS)
def test_truncated_json_is_400_in_openai_shape(stack: SplitStack, model: str) -> None:
    response = httpx.post(
        f"{stack.dp_url}/v1/chat/completions",
        content=b'{"model": "' + model.encode() + b'", "messages": [{"role": "user", "con',
        headers={"authorization": f"Bearer {APP_KEY}", "content-type": "application/json"},
        timeout=20,
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
