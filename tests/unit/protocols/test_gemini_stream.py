"""Gemini SSE streams <-> IR stream events."""

from __future__ import annotations

import pytest
from switchyard_dataplane.protocols.gemini import GeminiCodec
from switchyard_dataplane.protocols.ir import (
    ErrorInfo,
    ErrorKind,
    MessageStart,
    StopReason,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    TokenUsage,
    ToolCallDelta,
    ToolCallStart,
    UsageUpdate,
)

from .gemini_helpers import codec, ir_json, load, raw

STREAMS = ["stream_thinking_text", "stream_tool_calls"]


def decode(data: bytes, cuts: list[int] | None = None) -> list[StreamEvent]:
    decoder = codec().stream_decoder()
    events: list[StreamEvent] = []
    start = 0
    for cut in [*(cuts or []), len(data)]:
        events += decoder.feed(data[start:cut])
        start = cut
    return events + decoder.finish()


def encode(events: list[StreamEvent], *, include_usage: bool = True) -> bytes:
    encoder = GeminiCodec().stream_encoder("gemini-2.5-flash", include_usage=include_usage)
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


@pytest.mark.parametrize("name", STREAMS)
def test_stream_fixture_decodes_to_expected_events(name: str) -> None:
    assert ir_json(decode(raw(f"{name}.sse"))) == load(f"{name}.events.json")


@pytest.mark.parametrize("name", STREAMS)
def test_stream_split_at_every_byte_gives_the_same_events(name: str) -> None:
    data = raw(f"{name}.sse")
    expected = decode(data)
    for cut in range(1, len(data)):
        assert decode(data, [cut]) == expected, cut
    assert decode(data, list(range(1, len(data)))) == expected  # one byte at a time


@pytest.mark.parametrize("name", STREAMS)
def test_lf_and_cr_line_endings_decode_alike(name: str) -> None:
    data = raw(f"{name}.sse")
    assert decode(data.replace(b"\r\n", b"\n")) == decode(data)
    assert decode(data.replace(b"\r\n", b"\r")) == decode(data)


def test_last_event_without_blank_line_is_not_lost() -> None:
    data = raw("stream_tool_calls.sse").rstrip(b"\r\n")
    assert decode(data) == decode(raw("stream_tool_calls.sse"))


def test_error_event_mid_stream_ends_with_error() -> None:
    data = (
        b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"}}],'
        b'"modelVersion": "gemini-2.5-flash","responseId": "r1"}\r\n\r\n'
        b'data: {"error": {"code": 503,"message": "The model is overloaded.",'
        b'"status": "UNAVAILABLE"}}\r\n\r\n'
    )
    events = decode(data)
    assert events[:2] == [MessageStart("r1", "gemini-2.5-flash"), TextDelta("Hel")]
    assert events[2:] == [
        StreamEnd(
            StopReason.ERROR, error=ErrorInfo(ErrorKind.OVERLOADED, "The model is overloaded.", "UNAVAILABLE")
        )
    ]


def test_stream_cut_short_ends_with_error_and_empty_stream_with_nothing() -> None:
    first_chunk = raw("stream_thinking_text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    events = decode(first_chunk)
    assert isinstance(events[-2], UsageUpdate)
    assert events[-1] == StreamEnd(StopReason.ERROR)
    assert decode(b": keep-alive\r\n\r\n") == []


def test_usage_arriving_after_the_finish_chunk_is_passed_on() -> None:
    data = (
        b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}]},"finishReason": "STOP"}],'
        b'"usageMetadata": {"promptTokenCount": 3,"candidatesTokenCount": 1}}\n\n'
        b'data: {"usageMetadata": {"promptTokenCount": 3,"candidatesTokenCount": 2}}\n\n'
    )
    events = decode(data)
    assert events[-3:] == [
        UsageUpdate(TokenUsage(input_tokens=3, output_tokens=1)),
        StreamEnd(StopReason.END_TURN),
        UsageUpdate(TokenUsage(input_tokens=3, output_tokens=2)),
    ]


def openai_like_events() -> list[StreamEvent]:
    """An OpenAI-compatible upstream (DeepSeek reasoning) as the IR sees it: arguments
    arrive in fragments and usage comes after the finish."""
    return [
        MessageStart(id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", model="deepseek-reasoner"),
        ThinkingDelta("The user wants"),
        ThinkingDelta(" two forecasts."),
        TextDelta("Checking "),
        TextDelta("both."),
        ToolCallStart(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather"),
        ToolCallDelta(0, '{"loca'),
        ToolCallDelta(0, 'tion": "Boston"}'),
        ToolCallStart(1, "call_gm_5e1f", "get_weather"),
        ToolCallDelta(1, '{"location": "Paris", "unit": "c'),
        ToolCallDelta(1, 'elsius"}'),
        StreamEnd(StopReason.TOOL_USE),
        UsageUpdate(TokenUsage(input_tokens=82, output_tokens=61, cached_tokens=64, reasoning_tokens=17)),
    ]


def test_encoder_writes_expected_gemini_stream() -> None:
    encoder = GeminiCodec().stream_encoder("deepseek-reasoner", include_usage=True)
    out = b"".join(encoder.encode(e) for e in openai_like_events()) + encoder.finish()
    assert out == raw("encoded_from_ir.sse")


@pytest.mark.parametrize("name", STREAMS)
def test_decode_encode_decode_is_stable(name: str) -> None:
    events = decode(raw(f"{name}.sse"))
    again = decode(encode(events))
    assert again[1:] == events[1:]
    assert isinstance(again[0], MessageStart) and again[0].id == events[0].id  # type: ignore[union-attr]


def test_signature_after_thoughts_signs_them_and_otherwise_the_next_part() -> None:
    events: list[StreamEvent] = [
        MessageStart("m1", "x"),
        ThinkingDelta("hmm"),
        ThinkingSignature("SIG_THOUGHT"),
        ThinkingSignature("SIG_CALL"),
        ToolCallStart(0, "toolu_1", "f"),
        ToolCallDelta(0, "{}"),
        StreamEnd(StopReason.TOOL_USE),
    ]
    out = encode(events)
    assert b'{"text":"","thought":true,"thoughtSignature":"SIG_THOUGHT"}' in out
    assert b'{"functionCall":{"id":"toolu_1","name":"f","args":{}},"thoughtSignature":"SIG_CALL"}' in out
    assert decode(out)[1:4] == [
        ThinkingDelta("hmm"),
        ThinkingSignature("SIG_THOUGHT"),
        ThinkingSignature("SIG_CALL"),
    ]


def test_encoder_without_usage_and_with_an_error() -> None:
    events: list[StreamEvent] = [
        MessageStart("m1", "x"),
        TextDelta("partial"),
        UsageUpdate(TokenUsage(input_tokens=1, output_tokens=1)),
        StreamEnd(StopReason.END_TURN),
    ]
    assert b"usageMetadata" not in encode(events, include_usage=False)
    failed = encode(
        [*events[:2], StreamEnd(StopReason.ERROR, error=ErrorInfo(ErrorKind.RATE_LIMIT, "slow down"))]
    )
    assert failed.endswith(
        b'data: {"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}\r\n\r\n'
    )
