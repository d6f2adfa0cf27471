"""Local token counting: cl100k_base figures offline, framing, tools, images, fallback."""

from __future__ import annotations

import pytest
from switchyard_dataplane import token_count
from switchyard_dataplane.protocols.ir import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    StopReason,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from switchyard_dataplane.token_count import (
    IMAGE_TOKENS,
    IMAGE_TOKENS_LOW_DETAIL,
    estimate_request_tokens,
    estimate_response_tokens,
    estimate_text_tokens,
    estimate_usage,
)

WEATHER = Tool(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def _request(*messages: Message, **fields: object) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), **fields)  # type: ignore[arg-type]


def _user(*parts: object) -> Message:
    return Message(role="user", parts=list(parts))  # type: ignore[arg-type]


def test_uses_the_real_cl100k_encoding_without_network() -> None:
    assert token_count.encoding_name() == "cl100k_base"
    # Reference figures of cl100k_base (tiktoken's own examples).
    assert estimate_text_tokens("hello world") == 2
    assert estimate_text_tokens("tiktoken is great!") == 6
    assert estimate_text_tokens("") == 0


def test_special_token_text_is_counted_not_refused() -> None:
    assert estimate_text_tokens("<|endoftext|>") > 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("hello", 1),  # short words are one token
        ("internationalization", 5),  # 6 letters + 14 more in pieces of 4
        ("hi there!", 3),
        ("1234567", 3),  # digits in groups of three
        ("你好世界", 4),  # each CJK character alone
        ("x = f(y)", 6),
    ],
)
def test_heuristic_counter_is_deterministic(text: str, expected: int) -> None:
    assert token_count._heuristic_tokens(text) == expected


def test_request_counts_framing_system_and_every_message() -> None:
    plain = _request(_user(TextPart("hello world")))
    # reply priming 3 + message framing 3 + 2 content tokens
    assert estimate_request_tokens(plain) == 8
    with_system = _request(_user(TextPart("hello world")), system=[TextPart("hello world")])
    assert estimate_request_tokens(with_system) == 8 + 3 + 2
    two_turns = _request(
        _user(TextPart("hello world")),
        Message(role="assistant", parts=[TextPart("hello world")]),
        _user(TextPart("hello world")),
    )
    assert estimate_request_tokens(two_turns) == 3 + 3 * (3 + 2)


def test_tools_tool_calls_and_results_are_counted() -> None:
    base = _request(_user(TextPart("weather in Paris?")))
    with_tools = _request(_user(TextPart("weather in Paris?")), tools=[WEATHER])
    assert estimate_request_tokens(with_tools) > estimate_request_tokens(base) + 10

    call = ToolCallPart(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    result = ToolResultPart(tool_call_id="call_1", content=[TextPart("sunny, 21 degrees")])
    round_trip = _request(
        _user(TextPart("weather in Paris?")),
        Message(role="assistant", parts=[call]),
        _user(result),
        tools=[WEATHER],
    )
    call_tokens = 4 + estimate_text_tokens("get_weather") + estimate_text_tokens('{"city": "Paris"}')
    result_tokens = 4 + estimate_text_tokens("sunny, 21 degrees")
    assert estimate_request_tokens(round_trip) == (
        estimate_request_tokens(with_tools) + 2 * 3 + call_tokens + result_tokens
    )


def test_images_cost_a_fixed_documented_amount() -> None:
    text_only = estimate_request_tokens(_request(_user(TextPart("what is this?"))))
    by_url = _request(_user(TextPart("what is this?"), ImagePart(url="https://example.com/cat.png")))
    inline = _request(
        _user(TextPart("what is this?"), ImagePart(data="iVBORw0KGgo=" * 1000, media_type="image/png"))
    )
    low = _request(_user(TextPart("what is this?"), ImagePart(url="https://e.com/x.png", detail="low")))
    assert estimate_request_tokens(by_url) == text_only + IMAGE_TOKENS
    # base64 payload size does not leak into the count
    assert estimate_request_tokens(inline) == text_only + IMAGE_TOKENS
    assert estimate_request_tokens(low) == text_only + IMAGE_TOKENS_LOW_DETAIL


def test_response_counts_text_thinking_and_tool_calls() -> None:
    response = ChatResponse(
        id="r",
        model="m",
        parts=[
            ThinkingPart(text="hello world", signature="sig"),
            TextPart(text="hello world"),
            ToolCallPart(id="c", name="get_weather", arguments='{"city":"Paris"}'),
        ],
        stop_reason=StopReason.TOOL_USE,
    )
    call = 4 + estimate_text_tokens("get_weather") + estimate_text_tokens('{"city":"Paris"}')
    assert estimate_response_tokens(response) == 2 + 2 + call
    empty = ChatResponse(id="r", model="m", parts=[], stop_reason=StopReason.END_TURN)
    assert estimate_response_tokens(empty) == 0


def test_estimate_usage_is_marked_estimated() -> None:
    request = _request(_user(TextPart("hello world")))
    response = ChatResponse(
        id="r",
        model="m",
        parts=[ThinkingPart(text="hello world"), TextPart("hi")],
        stop_reason=StopReason.END_TURN,
    )
    usage = estimate_usage(request, response)
    assert usage.estimated is True
    assert usage.input_tokens == 8
    assert usage.output_tokens == 3
    assert usage.reasoning_tokens == 2
    assert usage.cached_tokens == 0


def test_approximate_payload_tokens_counts_text_and_images_cheaply() -> None:
    from switchyard_dataplane.token_count import IMAGE_TOKENS, approximate_payload_tokens

    text = "word " * 4000  # 20,000 characters
    payload = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text}]},
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "base64", "data": "A" * 10**6}}],
            },
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
            },
        ],
    }
    approx = approximate_payload_tokens(payload)
    # ~4 characters per token over the strings; the megabyte of base64 counts as images.
    assert 5000 <= approx - 2 * IMAGE_TOKENS <= 5100
