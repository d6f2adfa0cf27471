"""Gemini responses, usage, finish reasons and errors <-> IR."""

from __future__ import annotations

import json

import pytest
from switchyard_common.errors import UpstreamUnreachable
from switchyard_dataplane.protocols.gemini_response import stop_reason_from_gemini, usage_to_gemini
from switchyard_dataplane.protocols.ir import (
    ChatResponse,
    ErrorInfo,
    ErrorKind,
    StopReason,
    TextPart,
    ThinkingPart,
    TokenUsage,
    ToolCallPart,
)

from .gemini_helpers import codec, ir_json, load, raw


@pytest.mark.parametrize(
    "name", ["response_text", "response_thinking_tools", "response_max_tokens", "response_blocked"]
)
def test_response_fixture_parses_to_expected_ir(name: str) -> None:
    response = codec().parse_response(load(f"{name}.json"))
    assert ir_json(response) == load(f"{name}.ir.json")


def test_response_round_trips_through_ir() -> None:
    payload = load("response_thinking_tools.json")
    rebuilt = codec().build_response(codec().parse_response(payload), "gemini-2.5-flash")
    # Per-modality token details have no IR field; everything else comes back as sent.
    for key in ("promptTokensDetails", "cacheTokensDetails"):
        del payload["usageMetadata"][key]
    assert rebuilt == payload


def test_ir_response_from_another_protocol_builds_gemini_answer() -> None:
    response = ChatResponse(
        id="msg_01XFDUDYJgAACzvnptvVoYEL",
        model="claude-sonnet-4-5",
        parts=[
            ThinkingPart("Two lookups needed.", signature="EqQBCkYIBRgCKkD"),
            TextPart("Checking."),
            ToolCallPart("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"location": "Boston"}'),
        ],
        stop_reason=StopReason.TOOL_USE,
        usage=TokenUsage(input_tokens=472, output_tokens=89, cached_tokens=400, reasoning_tokens=20),
    )
    assert codec().build_response(response, "claude-via-gateway") == {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "text": "Two lookups needed.",
                            "thought": True,
                            "thoughtSignature": "EqQBCkYIBRgCKkD",
                        },
                        {"text": "Checking."},
                        {
                            "functionCall": {
                                "id": "toolu_01A09q90qw90lq917835lq9",
                                "name": "get_weather",
                                "args": {"location": "Boston"},
                            }
                        },
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 472,
            "candidatesTokenCount": 69,
            "totalTokenCount": 561,
            "cachedContentTokenCount": 400,
            "thoughtsTokenCount": 20,
        },
        "modelVersion": "claude-via-gateway",
        "responseId": "msg_01XFDUDYJgAACzvnptvVoYEL",
    }


@pytest.mark.parametrize(
    ("finish", "has_calls", "expected"),
    [
        ("STOP", False, StopReason.END_TURN),
        ("STOP", True, StopReason.TOOL_USE),
        ("MAX_TOKENS", True, StopReason.MAX_TOKENS),
        ("SAFETY", False, StopReason.CONTENT_FILTER),
        ("RECITATION", False, StopReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", False, StopReason.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", False, StopReason.ERROR),
        ("SOMETHING_NEW", False, StopReason.ERROR),
        ("FINISH_REASON_UNSPECIFIED", False, None),
        (None, False, None),
    ],
)
def test_finish_reasons(finish: str | None, has_calls: bool, expected: StopReason | None) -> None:
    assert stop_reason_from_gemini(finish, has_tool_calls=has_calls) is expected


def test_usage_output_includes_thoughts_both_ways() -> None:
    usage = TokenUsage(input_tokens=100, output_tokens=50, cached_tokens=10, reasoning_tokens=30)
    meta = usage_to_gemini(usage)
    assert meta["candidatesTokenCount"] == 20 and meta["thoughtsTokenCount"] == 30
    parsed = codec().parse_response({"candidates": [], "usageMetadata": meta}).usage
    assert parsed == usage


def test_odd_upstream_answers_do_not_become_caller_errors() -> None:
    odd = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": 5},
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                        {"text": "ok"},
                    ]
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": "n/a",
    }
    response = codec().parse_response(odd)
    assert response.parts == [TextPart("ok")]
    assert response.usage is None and response.id
    with pytest.raises(UpstreamUnreachable):
        codec().parse_response([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "fixture", "kind", "message_start"),
    [
        (429, "error_rate_limit.json", ErrorKind.RATE_LIMIT, "You exceeded your current quota"),
        (400, "error_invalid_key.json", ErrorKind.AUTHENTICATION, "API key not valid"),
        (503, "error_stream_array.json", ErrorKind.OVERLOADED, "The model is overloaded"),
    ],
)
def test_error_fixtures(status: int, fixture: str, kind: ErrorKind, message_start: str) -> None:
    info = codec().parse_error(status, raw(fixture))
    assert info.kind is kind
    assert info.message.startswith(message_start)


@pytest.mark.parametrize(
    ("grpc_status", "kind"),
    [
        ("INVALID_ARGUMENT", ErrorKind.INVALID_REQUEST),
        ("UNAUTHENTICATED", ErrorKind.AUTHENTICATION),
        ("PERMISSION_DENIED", ErrorKind.PERMISSION),
        ("NOT_FOUND", ErrorKind.NOT_FOUND),
        ("RESOURCE_EXHAUSTED", ErrorKind.RATE_LIMIT),
        ("INTERNAL", ErrorKind.API_ERROR),
        ("UNAVAILABLE", ErrorKind.OVERLOADED),
        ("DEADLINE_EXCEEDED", ErrorKind.TIMEOUT),
    ],
)
def test_error_status_round_trip(grpc_status: str, kind: ErrorKind) -> None:
    body = json.dumps({"error": {"code": 400, "message": "m", "status": grpc_status}}).encode()
    info = codec().parse_error(400, body)
    assert info == ErrorInfo(kind=kind, message="m", code=grpc_status)
    assert codec().build_error(418, info) == {"error": {"code": 418, "message": "m", "status": grpc_status}}


def test_error_without_json_body_uses_http_status() -> None:
    info = codec().parse_error(504, b"<html>Gateway Timeout</html>")
    assert info.kind is ErrorKind.TIMEOUT and "Gateway Timeout" in info.message
    assert codec().parse_error(413, b"").kind is ErrorKind.REQUEST_TOO_LARGE
    assert codec().build_error(413, ErrorInfo(ErrorKind.REQUEST_TOO_LARGE, "too big"))["error"]["code"] == 413
