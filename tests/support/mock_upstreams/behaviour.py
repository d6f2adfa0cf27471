"""What every mock upstream answers, independent of its wire format.

Each protocol module reads its request into a `Turn` (the few facts that decide the
answer) and renders the resulting `Plan` in its own format, so the OpenAI, Anthropic
and Gemini mocks behave identically and a test can expect the same answer whatever
protocol the gateway spoke upstream.

Rules, in order:
  - model "error-<status>"                  answer <status> with the protocol's error body
  - model "slow-<ms>"                       wait <ms> first
  - last message is a tool result           text "tool said: <result>"
  - tools offered and the last user text
    mentions "weather"                      call get_weather {"city": "Paris"}
  - otherwise                               text "echo: <last user text>", followed by
                                            " [system: <system>]" when a system prompt is
                                            present, " [turns: <n>]" when there are n > 1
                                            user turns, " [image x<k>]" for k images
  - thinking requested                      a thinking block "thinking about: <text>"
                                            first (model names containing "reasoner"
                                            always think, like deepseek-reasoner)
  - model "no-usage"                        no usage anywhere in the answer
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

WEATHER_TOOL = "get_weather"
WEATHER_ARGS: dict[str, Any] = {"city": "Paris"}


class MockInvalid(Exception):
    """The request would be refused by the real API (400 in the protocol's format)."""


class MockUnauthorized(Exception):
    """Missing credentials (401, or 403 where the real API says so)."""


@dataclass
class Turn:
    model: str
    last_user_text: str = ""
    tool_results: list[str] = field(default_factory=list)  # when the last turn answers tools
    images: int = 0  # in the last user turn
    system: str = ""
    user_turns: int = 0
    tools: list[str] = field(default_factory=list)
    thinking: bool = False
    prompt_text: str = ""  # every text of the request, for the usage figure
    prompt_images: int = 0


@dataclass
class Plan:
    thinking: str | None
    text: str | None
    tool_call: tuple[str, dict[str, Any]] | None
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    with_usage: bool


IMAGE_PROMPT_TOKENS = 85


def word_count(text: str) -> int:
    return len(text.split())


def signature_for(thinking: str) -> str:
    """Anthropic-style opaque signature; deterministic so the mock can verify it when
    the thinking block comes back in a later turn."""
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def error_status(model: str) -> int | None:
    if model.startswith("error-"):
        try:
            return int(model.split("-", 1)[1])
        except ValueError:
            return None
    return None


def slow_seconds(model: str) -> float:
    if model.startswith("slow-"):
        try:
            return int(model.split("-", 1)[1]) / 1000
        except ValueError:
            return 0.0
    return 0.0


def wants_reasoning(model: str, requested: bool) -> bool:
    return requested or "reasoner" in model


def make_plan(turn: Turn) -> Plan:
    thinking: str | None = None
    text: str | None = None
    tool_call: tuple[str, dict[str, Any]] | None = None
    if turn.tool_results:
        text = "tool said: " + " | ".join(turn.tool_results)
    elif turn.tools and "weather" in turn.last_user_text.lower() and WEATHER_TOOL in turn.tools:
        tool_call = (WEATHER_TOOL, dict(WEATHER_ARGS))
    else:
        text = f"echo: {turn.last_user_text}"
        if turn.system:
            text += f" [system: {turn.system}]"
        if turn.user_turns > 1:
            text += f" [turns: {turn.user_turns}]"
        if turn.images:
            text += f" [image x{turn.images}]"
    if turn.thinking:
        thinking = f"thinking about: {turn.last_user_text or 'the tool result'}"
    output = word_count(text or "") + (len(json.dumps(tool_call[1])) // 4 + 5 if tool_call else 0)
    reasoning = word_count(thinking) if thinking else 0
    return Plan(
        thinking=thinking,
        text=text,
        tool_call=tool_call,
        input_tokens=max(1, word_count(turn.prompt_text)) + IMAGE_PROMPT_TOKENS * turn.prompt_images,
        output_tokens=output + reasoning,
        reasoning_tokens=reasoning,
        with_usage=not turn.model.startswith("no-usage"),
    )


def check_types(
    body: dict[str, Any], numbers: tuple[str, ...], integers: tuple[str, ...], where: str = ""
) -> None:
    """Reject wrongly typed sampling fields, as every real API does."""
    for key in numbers:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise MockInvalid(f"{where}{key}: Input should be a valid number")
    for key in integers:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise MockInvalid(f"{where}{key}: Input should be a valid integer")


def list_field(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MockInvalid(f"{key}: Input should be a valid list")
    return value


def pieces(text: str) -> list[str]:
    """Split text into stream deltas that concatenate back to it exactly."""
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def json_fragments(value: dict[str, Any]) -> list[str]:
    """Tool-call arguments streamed in small fragments, as providers do."""
    raw = json.dumps(value)
    return [raw[i : i + 5] for i in range(0, len(raw), 5)]
