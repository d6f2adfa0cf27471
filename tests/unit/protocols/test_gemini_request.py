"""Gemini request bodies <-> IR, against fixtures in Gemini's documented wire format."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from switchyard_common.errors import InvalidRequest
from switchyard_dataplane.protocols.gemini import gemini_path, gemini_url
from switchyard_dataplane.protocols.gemini_schema import to_gemini_schema
from switchyard_dataplane.protocols.ir import (
    ChatRequest,
    ImagePart,
    Message,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)

from .gemini_helpers import codec, load


def test_gemini_request_round_trips_exactly() -> None:
    payload = load("request_full.json")
    request = codec().parse_request(copy.deepcopy(payload))
    assert codec().build_request(request, "gemini-2.5-flash") == payload


def test_parsed_request_holds_everything_other_protocols_need() -> None:
    request = codec().parse_request(load("request_full.json"))
    assert [p.text for p in request.system] == [
        "You are a travel assistant.",
        "Answer in one short paragraph.",
    ]
    assert [m.role for m in request.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    calls = [p for m in request.messages for p in m.parts if isinstance(p, ToolCallPart)]
    results = [p for m in request.messages for p in m.parts if isinstance(p, ToolResultPart)]
    # Id-less calls get ids, and their id-less responses are matched to them by name.
    assert [(c.id, c.name) for c in calls] == [
        ("call_gm_0", "get_weather"),
        ("call_gm_1", "get_time"),
        ("fc-9b2e", "get_weather"),
    ]
    assert [(r.tool_call_id, r.name, r.is_error) for r in results] == [
        ("call_gm_0", "get_weather", False),
        ("call_gm_1", "get_time", False),
        ("fc-9b2e", "get_weather", True),
    ]
    assert calls[0].arguments == '{"location": "Boston, MA", "unit": "celsius"}'
    assert request.tools[0].parameters["properties"]["unit"]["type"] == ["string", "null"]
    assert request.tools[2].parameters == {"type": "object", "properties": {}}
    assert request.tool_choice == ToolChoice("auto")
    assert (request.temperature, request.top_p, request.top_k, request.max_tokens) == (0.4, 0.9, 32, 2048)
    assert request.stop == ["END"]
    assert request.reasoning is not None and request.reasoning.budget_tokens == 1024
    assert request.stream_usage is True


def test_snake_case_fields_and_upper_case_types_are_accepted() -> None:
    request = codec().parse_request(load("request_snake_case.json"))
    assert request.system == [TextPart("Be terse.")]
    assert request.messages[0].parts[1:] == [
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="gs://bucket/cat.jpg", media_type="image/jpeg"),
    ]
    assert request.messages[1].parts == [
        ThinkingPart("", signature="c2ln"),
        ToolCallPart("call_gm_0", "lookup", '{"q": "cat"}'),
    ]
    assert request.messages[2].parts == [ToolResultPart("call_gm_0", [TextPart("a cat")], name="lookup")]
    assert request.tools == [
        Tool("lookup", None, {"type": "object", "properties": {"q": {"type": "string"}}})
    ]
    assert request.tool_choice == ToolChoice("tool", "lookup")
    assert request.reasoning == Reasoning(enabled=False, budget_tokens=0)
    assert (request.max_tokens, request.top_p, request.top_k, request.stop) == (100, 0.5, 4, ["x"])


def test_ir_from_another_protocol_builds_the_expected_gemini_request() -> None:
    body = codec().build_request(openai_like_request(), "gemini-2.5-pro")
    assert body == load("request_from_ir.expected.json")
    assert "model" not in body  # the model goes in the URL


def openai_like_request() -> ChatRequest:
    """What an OpenAI / Anthropic caller's request looks like in the IR: system prompt,
    images by URL and as a data URL, reasoning effort, a pydantic-style tool schema,
    parallel tool calls answered by one message per result (OpenAI `role: tool`), and
    the signed / redacted thinking an Anthropic caller sends back."""
    weather_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "WeatherArgs",
        "type": "object",
        "additionalProperties": False,
        "$defs": {"Unit": {"title": "Unit", "type": "string", "enum": ["celsius", "fahrenheit"]}},
        "properties": {
            "location": {"type": "string", "description": "City name", "format": "uri-reference"},
            "unit": {"anyOf": [{"$ref": "#/$defs/Unit"}, {"type": "null"}], "default": None},
            "days": {"type": ["integer", "null"], "exclusiveMinimum": 0, "default": 1},
            "tags": {"type": "array", "items": {"const": "hourly"}, "uniqueItems": True},
        },
        "required": ["location", "ghost"],
    }
    return ChatRequest(
        model="gpt-4o",
        system=[TextPart("You are a weather bot.")],
        messages=[
            Message(
                "user",
                [
                    TextPart("Compare the weather in these two photos."),
                    ImagePart(url="https://example.com/photos/boston.jpg", detail="high"),
                    ImagePart(url="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"),
                    ImagePart(data="/9j/4AAQSkZJRg==", media_type="image/jpeg"),
                ],
            ),
            Message(
                "assistant",
                [
                    ThinkingPart("The user wants two cities.", signature="CiQBsig-from-gemini"),
                    ThinkingPart("", redacted_data="EmwKAhgBEgy3va3pzix"),
                    TextPart("Checking both."),
                    ThinkingPart("", signature="CiUBcall-signature"),
                    ToolCallPart("call_abc123", "get_weather", '{"location": "Boston"}'),
                    ToolCallPart("call_gm_1f2e", "get_weather", ""),
                ],
            ),
            Message("user", [ToolResultPart("call_abc123", [TextPart('{"temp_c": 21}')])]),
            Message(
                "user",
                [
                    ToolResultPart(
                        "call_gm_1f2e",
                        [TextPart("location missing"), ImagePart(data="R0lGOD==", media_type="image/gif")],
                        is_error=True,
                    )
                ],
            ),
            Message("user", [TextPart("And tomorrow?")]),
        ],
        tools=[
            Tool("get_weather", "Weather for a city.", weather_schema),
            Tool("get_time", None, {"type": "object", "properties": {}, "additionalProperties": False}),
        ],
        tool_choice=ToolChoice("tool", "get_weather"),
        parallel_tool_calls=True,
        max_tokens=1000,
        temperature=0.2,
        top_p=0.95,
        stop=["\n\nHuman:"],
        stream=True,
        reasoning=Reasoning(effort="high"),
        user="user-42",
        extra={"logprobs": True},  # another protocol's extras never reach Gemini
    )


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        (None, None),
        (Reasoning(enabled=False), {"thinkingBudget": 0}),
        (Reasoning(budget_tokens=3000), {"thinkingBudget": 3000, "includeThoughts": True}),
        (Reasoning(effort="low"), {"thinkingBudget": 1024, "includeThoughts": True}),
        (Reasoning(), {"thinkingBudget": -1, "includeThoughts": True}),
    ],
)
def test_reasoning_maps_to_thinking_config(
    reasoning: Reasoning | None, expected: dict[str, Any] | None
) -> None:
    request = ChatRequest(model="m", messages=[Message("user", [TextPart("hi")])], reasoning=reasoning)
    gen = codec().build_request(request, "gemini-2.5-flash").get("generationConfig", {})
    assert gen.get("thinkingConfig") == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("tool", "f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice_maps_to_function_calling_config(choice: ToolChoice, expected: dict[str, Any]) -> None:
    request = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("hi")])],
        tools=[Tool("f", None, {"type": "object", "properties": {"a": {"type": "string"}}})],
        tool_choice=choice,
    )
    assert codec().build_request(request, "g")["toolConfig"] == {"functionCallingConfig": expected}


def test_schema_conversion_handles_recursion_and_type_unions() -> None:
    node = {
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "type": "object",
        "properties": {
            "root": {"$ref": "#/$defs/Node"},
            "either": {"type": ["string", "integer"]},
            "choice": {"oneOf": [{"type": "string"}, {"type": "number"}]},
            "level": {"type": "integer", "enum": [1, 2]},
            "missing": {"$ref": "#/$defs/Nope"},
        },
    }
    out = to_gemini_schema(node)
    assert out is not None
    props = out["properties"]
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert props["choice"] == {"anyOf": [{"type": "string"}, {"type": "number"}]}
    assert props["level"] == {"type": "integer", "enum": ["1", "2"], "format": "enum"}
    assert props["missing"]["type"] == "object"
    depth, cursor = 0, props["root"]
    while "properties" in cursor:
        cursor, depth = cursor["properties"]["child"], depth + 1
    assert 1 < depth < 100  # cut off, not infinite
    assert to_gemini_schema({"type": "object"}) is None


def test_tool_result_without_its_call_is_refused() -> None:
    request = ChatRequest(model="m", messages=[Message("user", [ToolResultPart("call_x", [TextPart("1")])])])
    with pytest.raises(InvalidRequest):
        codec().build_request(request, "g")


def test_tool_call_arguments_that_are_not_an_object_are_refused() -> None:
    request = ChatRequest(model="m", messages=[Message("assistant", [ToolCallPart("c", "f", "[1, 2]")])])
    with pytest.raises(InvalidRequest):
        codec().build_request(request, "g")


def test_unknown_ir_role_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        codec().build_request(ChatRequest(model="m", messages=[Message("system", [TextPart("x")])]), "g")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"contents": []},
        {"contents": "hello"},
        {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
        {"contents": [{"role": "user"}]},
        {"contents": [{"role": "user", "parts": [{}]}]},
        {"contents": [{"role": "user", "parts": [{"text": 3}]}]},
        {
            "contents": [
                {"role": "user", "parts": [{"text": "a", "inlineData": {"mimeType": "x", "data": "y"}}]}
            ]
        },
        {"contents": [{"role": "user", "parts": [{"inlineData": {"data": "AAAA"}}]}]},
        {"contents": [{"role": "user", "parts": [{"videoGarbage": {}}]}]},
        {"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
        {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": "{}"}}]}]},
        {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
        {"contents": [{"parts": [{"text": "x"}]}], "tools": {"functionDeclarations": []}},
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"description": "d"}]}],
        },
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "TUPLE"}}]}],
        },
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"properties": []}}]}],
        },
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}},
        },
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}},
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 1.5}},
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": "END"}},
        {
            "contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": True}},
        },
        {"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": 5},
    ],
)
def test_malformed_requests_raise_invalid_request(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        codec().parse_request(payload)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    clone = copy.deepcopy(node)
    cursor = clone
    for key in path[:-1]:
        cursor = cursor[key]
    cursor[path[-1]] = value
    return clone


def test_any_wrong_type_anywhere_gives_invalid_request_or_a_request() -> None:
    payload = load("request_full.json")
    for path in _paths(payload):
        for junk in (None, True, 7, -1.5, "x", [], {}, [None], {"": None}):
            mutated = _replace(payload, path, junk)
            try:
                request = codec().parse_request(mutated)
            except InvalidRequest:
                continue
            with contextlib.suppress(InvalidRequest):
                codec().build_request(request, "gemini-2.5-flash")


def test_gemini_paths() -> None:
    assert gemini_path("gemini-2.5-flash", False) == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert (
        gemini_path("models/gemini-2.5-pro", True)
        == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert (
        gemini_path("tunedModels/my-tune", False, api_version="v1")
        == "/v1/tunedModels/my-tune:generateContent"
    )
    host = "https://generativelanguage.googleapis.com"
    assert gemini_url(host + "/", "g", False) == host + "/v1beta/models/g:generateContent"
    assert gemini_url(host + "/v1beta", "g", True) == host + "/v1beta/models/g:streamGenerateContent?alt=sse"
