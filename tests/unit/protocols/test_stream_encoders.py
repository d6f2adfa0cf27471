"""The caller's stream stays valid whatever order the upstream's events come in."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from switchyard_dataplane.protocols.anthropic_stream import AnthropicStreamEncoder
from switchyard_dataplane.protocols.ir import (
    MessageStart,
    StopReason,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    TokenUsage,
    ToolCallDelta,
    ToolCallStart,
    UsageUpdate,
)

from .golden import FIXTURES, sse_frames, translate_stream
from .sdk import anthropic_stream_message, openai_stream_completion


def check_anthropic_stream(frames: list[dict[str, Any]]) -> dict[str, str]:
    """Asserts Anthropic's event grammar; returns each tool call's argument JSON by id."""
    assert frames[0]["event"] == "message_start"
    assert [f["event"] for f in frames[-2:]] == ["message_delta", "message_stop"]
    open_index, kind, next_index = None, None, 0
    tools: dict[int, str] = {}
    ids: dict[int, str] = {}
    for frame in frames[1:-2]:
        event, data = frame["event"], frame["data"]
        assert data["type"] == event
        if event == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index, kind, next_index = next_index, data["content_block"]["type"], next_index + 1
            if kind == "tool_use":
                tools[open_index] = ""
                ids[open_index] = data["content_block"]["id"]
        elif event == "content_block_delta":
            assert data["index"] == open_index
            allowed = {
                "text": {"text_delta"},
                "thinking": {"thinking_delta", "signature_delta"},
                "tool_use": {"input_json_delta"},
            }
            assert data["delta"]["type"] in allowed[kind or ""]
            if kind == "tool_use":
                tools[data["index"]] += data["delta"]["partial_json"]
        else:
            assert event == "content_block_stop" and data["index"] == open_index
            open_index = None
    assert open_index is None
    return {ids[i]: arguments for i, arguments in tools.items()}


_ARGS = st.dictionaries(
    st.sampled_from(["city", "unit", "n"]), st.integers() | st.text(max_size=5), max_size=3
)


@st.composite
def interleaved(draw: st.DrawFn) -> tuple[list[StreamEvent], str, list[str]]:
    """Text, thinking and several tool calls whose argument fragments interleave."""
    calls = draw(st.lists(_ARGS, max_size=3))
    queues: list[list[StreamEvent]] = []
    arguments = []
    for i, args in enumerate(calls):
        text = json.dumps(args)
        arguments.append(text)
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=4)))
        bounds = [0, *cuts, len(text)]
        pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b]]
        queues.append([ToolCallStart(i, f"call_{i}", "f"), *(ToolCallDelta(i, p) for p in pieces)])
    texts = draw(st.lists(st.text(min_size=1, max_size=4), max_size=4))
    queues.append([TextDelta(t) for t in texts])
    queues.append([ThinkingDelta(t) for t in draw(st.lists(st.text(min_size=1, max_size=4), max_size=2))])
    events: list[StreamEvent] = [MessageStart("msg_1", "up")]
    while any(queues):
        queue = draw(st.sampled_from([q for q in queues if q]))
        events.append(queue.pop(0))
    events += [
        StreamEnd(StopReason.TOOL_USE if calls else StopReason.END_TURN),
        UsageUpdate(TokenUsage(5, 7)),
    ]
    return events, "".join(texts), arguments


@settings(max_examples=150, deadline=None)
@given(case=interleaved())
def test_anthropic_encoder_is_valid_for_interleaved_upstream(
    case: tuple[list[StreamEvent], str, list[str]],
) -> None:
    events, text, arguments = case
    encoder = AnthropicStreamEncoder("caller")
    raw = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    frames = sse_frames(raw)
    tools = check_anthropic_stream(frames)
    assert {k: json.loads(v) for k, v in tools.items()} == {
        f"call_{i}": json.loads(a) for i, a in enumerate(arguments)
    }
    message = anthropic_stream_message(raw)
    assert "".join(b.text for b in message.content if b.type == "text") == text
    assert message.usage.output_tokens == 7


def test_anthropic_encoder_valid_for_every_openai_fixture() -> None:
    for path in sorted((FIXTURES / "openai").glob("stream_*.sse")):
        check_anthropic_stream(sse_frames(translate_stream("openai", path.read_bytes())))


def test_round_trip_openai_anthropic_openai() -> None:
    raw = (FIXTURES / "openai" / "stream_tool_calls.sse").read_bytes()
    back = translate_stream("anthropic", translate_stream("openai", raw))
    completion, chunks = openai_stream_completion(back)
    original, _ = openai_stream_completion(raw)
    got, want = completion.choices[0].message, original.choices[0].message
    assert [(c.id, c.function.name, c.function.arguments) for c in got.tool_calls or []] == [
        (c.id, c.function.name, c.function.arguments) for c in want.tool_calls or []
    ]
    assert completion.choices[0].finish_reason == "tool_calls"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (
        62,
        40,
        32,
    )


def test_round_trip_anthropic_openai_anthropic_loses_only_the_signature() -> None:
    raw = (FIXTURES / "anthropic" / "stream_thinking.sse").read_bytes()
    message = anthropic_stream_message(translate_stream("openai", translate_stream("anthropic", raw)))
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.signature == ""
    assert thinking.thinking.startswith("Let me solve this step by step:") and thinking.thinking.endswith(
        "12,231"
    )
    assert text.type == "text" and text.text == "27 * 453 = 12,231"
    assert message.stop_reason == "end_turn"


def test_openai_encoder_without_include_usage_sends_no_usage_chunk() -> None:
    from switchyard_dataplane.protocols.translate import StreamTranslator

    raw = (FIXTURES / "anthropic" / "stream_text.sse").read_bytes()
    translator = StreamTranslator("anthropic", "openai", "m", include_usage=False)
    frames = sse_frames(translator.feed(raw) + translator.finish())
    assert all("usage" not in f["data"] for f in frames if isinstance(f["data"], dict))
    assert frames[-1]["data"] == "[DONE]"
    assert translator.usage is not None and translator.usage.output_tokens == 15
